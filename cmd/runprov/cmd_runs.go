package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/history"
)

// runListItem is a run as listings print it in JSON: the record without
// steps and manifests (runprov show has them), with its duration.
type runListItem struct {
	core.Run
	Steps           []core.RunStep    `json:"steps,omitempty"`
	Inputs          []core.FileRecord `json:"inputs,omitempty"`
	Outputs         []core.FileRecord `json:"outputs,omitempty"`
	DurationSeconds float64           `json:"duration_seconds,omitempty"`
}

func newRunsCmd(a *app) *cobra.Command {
	var (
		f      core.RunFilter
		status string
		since  string
	)
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List runs, newest first",
		Long: `List the recorded runs, newest first: short id, status, exit status, duration,
creation time, the Runfile's repository and path, commit, image and host.
Filters combine:

  --status S    queued, running, succeeded, failed or aborted
  --commit C    runs of commits whose hash starts with C
  --image D     runs of images whose manifest digest starts with D (sha256: optional)
  --repo R      runs of Runfiles in repository R
  --tag NAME    runs tagged NAME (runprov tag)
  --since T     runs created at or after T: 2026-01-31, an RFC 3339 time, or an age (90m, 36h, 7d)
  --limit N     at most N runs (0: all)

With -q only the run ids are printed, one per line (run=$(runprov runs -q -n 1)).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if status != "" {
				f.Status = core.RunStatus(status)
				if !f.Status.Finished() && f.Status != core.RunRunning && f.Status != core.RunQueued {
					return usagef("--status %q: want queued, running, succeeded, failed or aborted", status)
				}
			}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return usageError{err}
				}
				f.Since = t
			}
			if f.Limit < 0 {
				return usagef("--limit %d: want 0 (all) or more", f.Limit)
			}
			t, err := a.openRead(cmd.Context())
			if err != nil {
				return err
			}
			runs, err := t.store.Runs(cmd.Context(), f)
			if err != nil {
				return err
			}
			return a.listRuns(runs)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&status, "status", "", "only runs with this status")
	fl.StringVar(&f.Commit, "commit", "", "only runs of commits with this hash prefix")
	fl.StringVar(&f.ImageDigest, "image", "", "only runs of images with this digest prefix")
	fl.StringVar(&f.Repo, "repo", "", "only runs of Runfiles in this repository")
	fl.StringVar(&f.Tag, "tag", "", "only runs with this tag")
	fl.StringVar(&since, "since", "", "only runs created at or after this date, time or age")
	fl.IntVarP(&f.Limit, "limit", "n", 0, "at most this many runs (0: all)")
	return cmd
}

// listRuns lists runs: ids only with -q, JSON, CSV or a table.
func (a *app) listRuns(runs []core.Run) error {
	if a.quiet {
		// Ids only, one per line, for scripts: runprov runs -q -n 1.
		for _, r := range runs {
			fmt.Fprintln(a.stdout, r.ID)
		}
		return nil
	}
	if a.json {
		items := make([]runListItem, len(runs))
		for i := range runs {
			items[i] = runListItem{Run: runs[i], DurationSeconds: history.Duration(&runs[i]).Seconds()}
		}
		return printJSON(a.stdout, items)
	}
	tb := newTable(a, "RUN", "STATUS", "EXIT", "DURATION", "CREATED", "REPO", "PATH", "COMMIT", "IMAGE", "HOST")
	for _, r := range runs {
		exit := "-"
		if r.ExitCode != nil {
			exit = strconv.Itoa(*r.ExitCode)
		}
		id, commit, img := core.ShortRunID(r.ID), shortHash(r.Commit), shortDigest(r.ImageDigest)
		if a.csv {
			id, commit, img = r.ID, r.Commit, r.ImageDigest
		}
		tb.row(id, string(r.Status), exit, durationText(history.Duration(&r)), a.when(r.Created), orDash(r.Repo), orDash(r.Path), commit, img, orDash(r.Hostname))
	}
	return tb.flush()
}

// parseSince reads a date (2026-01-31, local midnight), an RFC 3339 time,
// or an age before now (90m, 36h, 7d).
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02T15:04:05", s, time.Local); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a date (2026-01-31), an RFC 3339 time or an age (90m, 36h, 7d)", s)
}
