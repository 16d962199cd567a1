package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/plugins/history"
)

func newReportCmd(a *app) *cobra.Command {
	var (
		since   string
		limit   int
		out     string
		compare []string
		title   string
	)
	cmd := &cobra.Command{
		Use:   "report [RUN...] [--since T] [-o report.html]",
		Short: "Write one self-contained HTML report of runs",
		Long: `Write an HTML report of the runs named (any unique prefixes), or of the runs
created since T (a date, an RFC 3339 time or an age such as 7d), or of the
newest --limit runs.

The report is one file that works offline (inline CSS, JS and SVG; nothing is
fetched): a runs table that sorts and filters by status, commit, image and
date; a timeline of the runs' starts and durations; the lineage graph of the
runs by content, as runprov trace follows it; a comparison of two runs
(--compare A,B; default the two newest); and for each run what runprov show
prints, its Runfile, inputs and outputs with sha256, steps, limits, a summary
of its system snapshot and its drift from the previous run of its commit.

It goes to FILE with -o, else to stdout.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if len(compare) != 0 && len(compare) != 2 {
				return usagef("--compare takes two runs: --compare A,B")
			}
			t, err := a.openRead(ctx)
			if err != nil {
				return err
			}
			st := t.store
			runs, err := reportRuns(ctx, st, args, since, limit)
			if err != nil {
				return err
			}
			if len(runs) == 0 {
				return advise(fmt.Errorf("report: %w: no runs to report", core.ErrNotFound), adviceNoRunsToReport, "")
			}
			in, err := buildReport(ctx, a, st, runs, compare)
			if err != nil {
				return err
			}
			if title != "" {
				in.Title = title
			}
			return writeReport(a.stdout, out, in)
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "runs created at or after this date, time or age (without RUN arguments)")
	f.IntVar(&limit, "limit", 100, "at most this many runs, newest first (without RUN arguments; 0: all)")
	f.StringVarP(&out, "output", "o", "", "write the report to this file (default stdout)")
	f.StringSliceVar(&compare, "compare", nil, "the two runs to compare: A,B (default the two newest)")
	f.StringVar(&title, "title", "", "the report's title")
	return cmd
}

// reportRuns are the named runs in the order given, else the newest runs
// matching --since and --limit, each with its steps and manifests.
func reportRuns(ctx context.Context, st *sqlite.Store, names []string, since string, limit int) ([]*core.Run, error) {
	var out []*core.Run
	if len(names) > 0 {
		if since != "" {
			return nil, usagef("name runs or give --since, not both")
		}
		seen := map[string]bool{}
		for _, n := range names {
			r, err := st.Run(ctx, n)
			if err != nil {
				return nil, err
			}
			if !seen[r.ID] {
				seen[r.ID] = true
				out = append(out, r)
			}
		}
		// Newest first, as listings are.
		slices.SortStableFunc(out, func(x, y *core.Run) int { return y.Created.Compare(x.Created) })
		return out, nil
	}
	filter := core.RunFilter{Limit: limit}
	if since != "" {
		t, err := parseSince(since, time.Now())
		if err != nil {
			return nil, usageError{err}
		}
		filter.Since = t
	}
	list, err := st.Runs(ctx, filter)
	if err != nil {
		return nil, err
	}
	if err := st.LoadDetails(ctx, list); err != nil {
		return nil, err
	}
	for i := range list {
		out = append(out, &list[i])
	}
	return out, nil
}

// reportLoader reads what runs point to, once per snapshot and Runfile:
// many runs share them.
type reportLoader struct {
	a        *app
	st       *sqlite.Store
	kernels  map[string]*core.SystemKernel
	envs     map[string]*core.Environment
	runfiles map[string][]byte
}

func (l *reportLoader) record(ctx context.Context, r *core.Run) (*history.Record, error) {
	rec := &history.Record{Run: *r}
	if sha := r.SystemKernelSHA256; sha != "" {
		k, ok := l.kernels[sha]
		if !ok {
			var err error
			if k, err = l.st.SystemKernel(ctx, sha); err != nil && !errors.Is(err, core.ErrNotFound) {
				return nil, err
			}
			l.kernels[sha] = k
		}
		rec.SystemKernel = k
	}
	if sha := r.EnvironmentSHA256; sha != "" {
		e, ok := l.envs[sha]
		if !ok {
			var err error
			if e, err = l.st.Environment(ctx, sha); err != nil && !errors.Is(err, core.ErrNotFound) {
				return nil, err
			}
			l.envs[sha] = e
		}
		rec.Environment = e
	}
	return rec, nil
}

// runfile is the Runfile of r, read once per commit and path.
func (l *reportLoader) runfile(ctx context.Context, r *core.Run) []byte {
	key := r.Commit + ":" + r.Path
	if b, ok := l.runfiles[key]; ok {
		return b
	}
	b := runfileText(ctx, l.a, r)
	l.runfiles[key] = b
	return b
}

func (l *reportLoader) side(ctx context.Context, rec *history.Record) history.Side {
	return history.Side{Run: &rec.Run, Runfile: l.runfile(ctx, &rec.Run), SystemKernel: rec.SystemKernel, Environment: rec.Environment}
}

func buildReport(ctx context.Context, a *app, st *sqlite.Store, runs []*core.Run, compare []string) (*history.ReportInput, error) {
	l := &reportLoader{a: a, st: st, kernels: map[string]*core.SystemKernel{}, envs: map[string]*core.Environment{}, runfiles: map[string][]byte{}}
	in := &history.ReportInput{Title: "runprov report", Generated: time.Now().UTC(), Version: version}
	byID := map[string]*history.Record{}
	for _, r := range runs {
		rec, err := l.record(ctx, r)
		if err != nil {
			return nil, err
		}
		show, err := reportShowText(rec, st.Layout())
		if err != nil {
			return nil, err
		}
		byID[r.ID] = rec
		in.Runs = append(in.Runs, history.ReportRun{Record: rec, Runfile: l.runfile(ctx, r), ShowText: show})
	}
	prev := previousInReport(runs)
	for i := range in.Runs {
		d, err := l.drift(ctx, in.Runs[i].Record, byID[prev[in.Runs[i].Record.ID]])
		if err != nil {
			return nil, err
		}
		in.Runs[i].Drift = d
	}
	var err error
	if in.Compare, err = l.compare(ctx, in.Runs, compare, byID); err != nil {
		return nil, err
	}
	if in.Lineage, err = history.ReportLineage(ctx, st, in.Runs); err != nil {
		return nil, err
	}
	return in, nil
}

// reportMaxFiles caps the files a run's show text lists in a report.
const reportMaxFiles = 200

// reportShowText is what runprov show prints for rec, with at most
// reportMaxFiles inputs and outputs listed.
func reportShowText(rec *history.Record, layout core.Layout) (string, error) {
	c := *rec
	c.Inputs, c.Outputs = rec.Inputs[:min(len(rec.Inputs), reportMaxFiles)], rec.Outputs[:min(len(rec.Outputs), reportMaxFiles)]
	var b bytes.Buffer
	if err := printRecord(&b, &c, layout, false); err != nil {
		return "", err
	}
	if n := len(rec.Inputs) + len(rec.Outputs) - len(c.Inputs) - len(c.Outputs); n > 0 {
		fmt.Fprintf(&b, "... %d more files: runprov show %s lists them all\n", n, core.ShortRunID(rec.ID))
	}
	return b.String(), nil
}

// previousInReport maps each run to the previous run of its commit among
// runs; a commit's oldest run here is left out (the store is asked).
func previousInReport(runs []*core.Run) map[string]string {
	byCommit := map[string][]*core.Run{}
	for _, r := range runs {
		byCommit[r.Commit] = append(byCommit[r.Commit], r)
	}
	prev := map[string]string{}
	for _, rs := range byCommit {
		slices.SortStableFunc(rs, func(x, y *core.Run) int { return x.Created.Compare(y.Created) })
		for i := 1; i < len(rs); i++ {
			prev[rs[i].ID] = rs[i-1].ID
		}
	}
	return prev
}

// drift compares the previous run of rec's commit (p when the report holds
// it, else the store's) with rec; nil when rec is its commit's first run.
func (l *reportLoader) drift(ctx context.Context, rec, p *history.Record) (*history.Diff, error) {
	if p == nil {
		prev, err := l.st.PreviousRun(ctx, rec.Commit, &rec.Run)
		if errors.Is(err, core.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if prev.Inputs, prev.Outputs, err = l.st.RunFiles(ctx, prev.ID); err != nil {
			return nil, err
		}
		if p, err = l.record(ctx, prev); err != nil {
			return nil, err
		}
	}
	return history.Compare(l.side(ctx, p), l.side(ctx, rec)), nil
}

// compare is the diff of the two runs named, else of the two newest.
func (l *reportLoader) compare(ctx context.Context, runs []history.ReportRun, names []string, byID map[string]*history.Record) (*history.Diff, error) {
	var pair [2]*history.Record
	switch {
	case len(names) == 2:
		for i, n := range names {
			r, err := l.st.Run(ctx, n)
			if err != nil {
				return nil, err
			}
			if pair[i] = byID[r.ID]; pair[i] == nil {
				if pair[i], err = l.record(ctx, r); err != nil {
					return nil, err
				}
			}
		}
	case len(runs) >= 2:
		pair = [2]*history.Record{runs[1].Record, runs[0].Record}
	default:
		return nil, nil
	}
	return history.Compare(l.side(ctx, pair[0]), l.side(ctx, pair[1])), nil
}

// writeReport writes the report to path through a temporary file, so a
// failed write leaves no half report; "" is stdout.
func writeReport(stdout io.Writer, path string, in *history.ReportInput) error {
	if path == "" {
		return history.WriteReport(stdout, in)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".report-*.html")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := history.WriteReport(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}
