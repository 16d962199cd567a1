package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/history"
	"github.com/runprov/runprov/plugins/release"
)

func newReleaseCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Output checking: request, review and export files through the release spool",
		Long: `Nothing leaves a TRE until output checkers have looked at it. An analyst
requests files of a run (release request); the request goes into the release
spool, the site policy's release_dir, with snapshots of the files, the run's
signed record and the automatic pre-check findings. Output checkers, whose keys
the policy lists in output_checker_keys, vote on it with their keys (release
review); export writes the files that enough independent checkers approved
(release_reviews_required, default 2), with a signed in-toto statement and a
Five Safes RO-Crate. Every request, view, vote and export is appended to the
spool's hash-chained log (release log, release verify). Only files of OUTPUTs
marked sensitivity=moderate in the Runfile may be requested.`,
	}
	cmd.AddCommand(newReleaseRequestCmd(a), newReleaseLsCmd(a), newReleaseShowCmd(a), newReleaseReviewCmd(a),
		newReleaseExportCmd(a), newReleaseLogCmd(a), newReleaseVerifyCmd(a))
	return cmd
}

func newReleaseRequestCmd(a *app) *cobra.Command {
	var note, key string
	cmd := &cobra.Command{
		Use:   "request RUN [PATH...] --note CONTEXT [--key KEY]",
		Short: "Ask output checkers to release files of a run",
		Long: `Write a release request for output files of RUN into the release spool: a
snapshot of each file, the run's record (signed, when it is) and the pre-check
findings. PATH is a file's path in its output directory (or the OUTPUT's path
joined with it); without PATH every file of a sensitivity=moderate OUTPUT is
requested. A file of high sensitivity, over release_max_bytes, of a type not
in release_allowed_types, with more rows than release_max_rows or a column
release_forbidden_columns names is refused (exit 125). Small counts are
recorded for the checkers. --key signs the request. Prints the request id.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(note) == "" {
				return usagef("release request needs --note: say what the files are and why they should leave")
			}
			rl, err := airlock(a)
			if err != nil {
				return err
			}
			in, err := releaseRunInput(cmd.Context(), a, args[0])
			if err != nil {
				return err
			}
			req := release.RequestInput{Run: *in, Paths: args[1:], Note: note, Actor: actor()}
			if key != "" {
				if req.Signer, err = loadReleaseSigner(key); err != nil {
					return err
				}
			}
			out, err := rl.NewRequest(cmd.Context(), req)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, out)
			}
			for _, f := range out.Findings {
				fmt.Fprintf(a.stderr, "runprov: for the checkers: %s\n", release.FindingText(f))
			}
			fmt.Fprintln(a.stdout, out.Request.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "what the files are and why they should leave (required)")
	cmd.Flags().StringVar(&key, "key", "", "sign the request with this private key file")
	return cmd
}

// releaseRunInput reads run prefix from the store: its record, its signed
// envelope and where its output files are.
func releaseRunInput(ctx context.Context, a *app, prefix string) (*release.RunInput, error) {
	rec, err := loadRecord(ctx, a, prefix)
	if err != nil {
		return nil, err
	}
	stmt, err := history.InToto(rec, history.ExportOptions{Version: version})
	if err != nil {
		return nil, err
	}
	payload, err := history.StatementJSON(stmt)
	if err != nil {
		return nil, err
	}
	run := rec.Run
	in := &release.RunInput{Run: &run, Statement: payload, Open: func(f core.FileRecord) (io.ReadCloser, error) {
		for _, m := range run.Mounts {
			if m.Kind == core.MountOutput && m.Target == f.Name {
				return os.Open(filepath.Join(m.Source, filepath.FromSlash(f.Path)))
			}
		}
		return nil, fmt.Errorf("output %s of run %s: %w: no output mount", f.Name, core.ShortRunID(run.ID), core.ErrNotFound)
	}}
	if sig := rec.Signature; sig != nil {
		in.Envelope, in.SignerID, in.SignerKind = sig.Envelope, sig.KeyID, sig.KeyKind
	}
	return in, nil
}

func newReleaseLsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List the release requests in the spool",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rl, err := airlock(a)
			if err != nil {
				return err
			}
			reqs, problems, err := rl.List(cmd.Context())
			if err != nil {
				return err
			}
			for _, p := range problems {
				a.log.Warn("release request left out", "problem", p)
			}
			if a.json {
				if reqs == nil {
					reqs = []release.Request{}
				}
				return printJSON(a.stdout, reqs)
			}
			t := newTable(a, "REQUEST", "CREATED", "REQUESTER", "RUN", "FILES", "NOTE")
			for _, r := range reqs {
				t.row(r.ID, r.Created, r.Requester.User, core.ShortRunID(r.Run.ID), strings.Join(names(r.Files), " "), r.Note)
			}
			return t.flush()
		},
	}
}

func names(fs []release.File) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	return out
}

func newReleaseShowCmd(a *app) *cobra.Command {
	var page string
	cmd := &cobra.Command{
		Use:   "show REQ [--html FILE]",
		Short: "One release request: its files, findings, run and votes",
		Long: `Show a release request: each file with its pre-check findings and table
summary, the run that made it and whether its record is signed, and the
votes. A checker sees the other checkers' votes only after voting; the
requester sees them all. The view is logged. --html FILE writes the same as a
self-contained HTML page for checkers.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rl, err := airlock(a)
			if err != nil {
				return err
			}
			v, err := rl.Show(cmd.Context(), args[0], actor())
			if err != nil {
				return err
			}
			if page != "" {
				return writeReleasePage(page, v)
			}
			if a.json {
				return printJSON(a.stdout, v)
			}
			printReleaseView(a.stdout, v)
			return nil
		},
	}
	cmd.Flags().StringVar(&page, "html", "", "write the request as an HTML page to `FILE`")
	return cmd
}

func writeReleasePage(path string, v *release.View) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write the page: %w", err)
	}
	if err := release.WritePage(f, v); err != nil {
		f.Close()
		return fmt.Errorf("write the page: %w", err)
	}
	return f.Close()
}

func printReleaseView(w io.Writer, v *release.View) {
	q := v.Request
	signed := "unsigned"
	if v.Signed {
		signed = "signed by key " + q.Requester.KeyID
	}
	fmt.Fprintf(w, "request   %s (%s)\ncreated   %s by %s (uid %d)\nnote      %s\n", q.ID, signed, q.Created, q.Requester.User, q.Requester.UID, q.Note)
	fmt.Fprintf(w, "run       %s (%s), Runfile %s at commit %s, image %s\n", q.Run.ID, q.Run.Status, q.Run.Path, q.Run.Commit, q.Run.Image)
	signer := ""
	if q.Run.Signed {
		signer = fmt.Sprintf(" (a %s key %s)", q.Run.SignerKind, q.Run.SignerKeyID)
	}
	fmt.Fprintf(w, "record    %s%s\n", v.Run.Status(), signer)
	for _, f := range q.Files {
		fmt.Fprintf(w, "file      %s  %d bytes  sha256:%s  %s\n", f.Name, f.Size, f.SHA256, f.Sensitivity)
		if f.Table != nil {
			fmt.Fprintf(w, "          %d rows, columns: %s\n", f.Table.Rows, columnsText(f.Table))
		}
		for _, x := range f.Findings {
			fmt.Fprintf(w, "          finding: %s\n", release.FindingText(x))
		}
	}
	for _, p := range v.Snapshots {
		fmt.Fprintf(w, "problem   %s\n", p)
	}
	for _, cv := range v.Votes {
		ok := "verified"
		if !cv.Verified {
			ok = cv.Problem
		}
		fmt.Fprintf(w, "vote      %s by %s (key %s) at %s: %s [%s]\n", cv.Decision, cv.Checker.User, shortKeyID(cv.Checker.KeyID), cv.Time, cv.Note, ok)
	}
	if v.Hidden > 0 {
		fmt.Fprintf(w, "votes     %d, shown once you have voted\n", v.Hidden)
	}
	for _, s := range v.Status {
		state := "pending"
		switch {
		case s.Released:
			state = "approved"
		case s.Rejected:
			state = "rejected"
		case s.Returned:
			state = "returned"
		}
		fmt.Fprintf(w, "status    %s: %s, %d of %d approvals\n", s.Name, state, s.Approvals, s.Required)
	}
}

func columnsText(t *release.Table) string {
	var parts []string
	for _, c := range t.Columns {
		s := c.Name
		if c.Numeric && c.Min != nil {
			s += fmt.Sprintf(" [%g..%g]", *c.Min, *c.Max)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func newReleaseReviewCmd(a *app) *cobra.Command {
	var key, note string
	var approve, reject, ret bool
	cmd := &cobra.Command{
		Use:   "review REQ --key KEY --approve|--reject|--return [PATH...] --note TEXT",
		Short: "Vote on a release request with an output checker's key",
		Long: `Sign a vote on the files of a release request (PATH names some; none: all)
and add it to the spool. Only keys the policy lists in output_checker_keys may
vote; the requester may not (the same key or the same OS user is refused,
exit 125). --approve counts towards release_reviews_required independent
approvals, --reject blocks the file, --return sends it back to the analyst.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			decision, err := oneDecision(approve, reject, ret)
			if err != nil {
				return err
			}
			if key == "" || strings.TrimSpace(note) == "" {
				return usagef("release review needs --key KEY (an output checker's private key) and --note TEXT")
			}
			rl, err := airlock(a)
			if err != nil {
				return err
			}
			s, err := loadReleaseSigner(key)
			if err != nil {
				return err
			}
			cv, err := rl.Review(cmd.Context(), args[0], release.ReviewInput{Actor: actor(), Signer: s, Decision: decision, Paths: args[1:], Note: note})
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, cv)
			}
			fmt.Fprintf(a.stderr, "runprov: %s of %s signed by key %s (vote %s)\n", decision, strings.Join(sortedFileNames(cv.Files), ", "), cv.Checker.KeyID, cv.File)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&key, "key", "", "the output checker's private key file (required)")
	f.StringVar(&note, "note", "", "why (required)")
	f.BoolVar(&approve, "approve", false, "approve the files")
	f.BoolVar(&reject, "reject", false, "reject the files: they may not leave")
	f.BoolVar(&ret, "return", false, "return the files to the analyst for changes")
	return cmd
}

func oneDecision(approve, reject, ret bool) (string, error) {
	var out []string
	if approve {
		out = append(out, release.Approve)
	}
	if reject {
		out = append(out, release.Reject)
	}
	if ret {
		out = append(out, release.Return)
	}
	if len(out) != 1 {
		return "", usageError{errNoDecision}
	}
	return out[0], nil
}

func sortedFileNames(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func newReleaseExportCmd(a *app) *cobra.Command {
	var out, key string
	cmd := &cobra.Command{
		Use:   "export REQ -o DIR --key KEY",
		Short: "Write the approved files of a release request, with their evidence",
		Long: `Verify the release spool (its log, every request and vote) and the request
against the site policy, then write to the new directory DIR only the files
that enough independent output checkers approved and none rejected, each
checked again against its snapshot and the pre-checks, with
release.intoto.dsse.json (a DSSE envelope, signed with --key, of an in-toto
Statement whose subjects are the released files and whose predicate holds the
request, the votes and the digests of the run's signed record) and
ro-crate-metadata.json (a Five Safes RO-Crate). Nothing approved, or a spool
that does not verify, is refused (exit 125).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" || key == "" {
				return usagef("release export needs -o DIR (a new directory) and --key KEY (signs the release)")
			}
			rl, err := airlock(a)
			if err != nil {
				return err
			}
			s, err := loadReleaseSigner(key)
			if err != nil {
				return err
			}
			ex, err := rl.Export(cmd.Context(), args[0], release.ExportInput{Actor: actor(), Signer: s, Dir: out})
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, ex)
			}
			for _, f := range ex.Released {
				fmt.Fprintln(a.stdout, filepath.Join(out, filepath.FromSlash(f.Name)))
			}
			for _, w := range ex.Withheld {
				fmt.Fprintf(a.stderr, "runprov: withheld %s: %s\n", w.Name, strings.Join(w.Reasons, "; "))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the new directory to write (required)")
	cmd.Flags().StringVar(&key, "key", "", "private key file that signs the release (required)")
	return cmd
}

func newReleaseLogCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "log",
		Short: "The release spool's log: every request, view, vote and export",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rl, err := airlock(a)
			if err != nil {
				return err
			}
			lines, problems, err := rl.Log(cmd.Context())
			if err != nil {
				return err
			}
			for _, p := range problems {
				a.log.Warn("release log does not verify", "problem", p)
			}
			if a.json {
				if lines == nil {
					lines = []release.LogLine{}
				}
				return printJSON(a.stdout, lines)
			}
			t := newTable(a, "SEQ", "TIME", "ACTION", "REQUEST", "USER", "KEY", "NOTE")
			for _, l := range lines {
				t.row(fmt.Sprint(l.Seq), l.Time, l.Action, l.Request, l.Actor.User, shortKeyID(l.Actor.KeyID), l.Note)
			}
			return t.flush()
		},
	}
}

func newReleaseVerifyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Check the release spool: its log, requests and votes",
		Long: `Check that the release log's entries follow one another unbroken (each names
the sha256 of the one before), that every signed entry verifies, that every
request, vote and file snapshot is what the log says, and that nothing in the
spool is missing from the log. Exit 0 verified, 1 not (each problem is
named), 125 when it could not check.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rl, err := airlock(a)
			if err != nil {
				return err
			}
			problems, err := rl.Verify(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				if problems == nil {
					problems = []string{}
				}
				if err := printJSON(a.stdout, map[string]any{"verified": len(problems) == 0, "problems": problems}); err != nil {
					return err
				}
			} else {
				for _, p := range problems {
					fmt.Fprintln(a.stdout, "problem:", p)
				}
				if len(problems) == 0 {
					fmt.Fprintln(a.stdout, "verified")
				}
			}
			if len(problems) > 0 {
				return exitStatus{1}
			}
			return nil
		},
	}
}
