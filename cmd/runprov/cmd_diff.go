package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/history"
)

// exitDiffer is diff's exit status when the runs differ, as diff(1)'s.
const exitDiffer = 1

// maxListed is how many files or kernel settings a section lists without -v.
const maxListed = 20

func newDiffCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "diff RUN_A RUN_B",
		Short: "Show what differs between two runs",
		Long: `Compare two runs: the Runfile (a unified diff when the commits' Runfiles
differ), image digests, arguments, environment, mounts, runtime, host and the
SystemKernel snapshot (summarised; every setting with -v), the packages in
the two images (added, removed, changed: numpy 1.24.2 -> 1.26.4), input and
output files by sha256 (added, removed, changed), exit status and duration.

Exit status: 0 when the runs are equivalent, 1 when they differ, 125 on
errors. Values every run has of its own (its id, times, the host directory its
outputs went to, its duration) never make runs differ.`,
		Args: nArgs(2, "diff", "which two runs? (runprov runs lists them; diff last~1 last compares the newest two)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var sides [2]history.Side
			for i, id := range args {
				rec, err := loadRecord(ctx, a, id)
				if err != nil {
					return err
				}
				sides[i] = history.Side{Run: &rec.Run, SystemKernel: rec.SystemKernel, Environment: rec.Environment}
				if rec.Packages != nil {
					sides[i].Packages = rec.Packages.Packages
				}
			}
			ra, rb := sides[0].Run, sides[1].Run
			// The Runfile texts are read only when they can differ.
			if ra.RunfileBlob != rb.RunfileBlob || ra.RunfileBlob == "" {
				sides[0].Runfile, sides[1].Runfile = runfileText(ctx, a, ra), runfileText(ctx, a, rb)
			}
			d := history.Compare(sides[0], sides[1])
			var err error
			if a.json {
				err = printJSON(a.stdout, d)
			} else {
				err = printDiff(a.stdout, d, a.verbose)
			}
			if err != nil {
				return err
			}
			if !d.Equivalent {
				return exitStatus{exitDiffer}
			}
			return nil
		},
	}
}

func printDiff(w io.Writer, d *history.Diff, verbose bool) error {
	a, b := core.ShortRunID(d.A), core.ShortRunID(d.B)
	if d.Equivalent {
		fmt.Fprintf(w, "runs %s and %s are equivalent\n", a, b)
	} else {
		fmt.Fprintf(w, "runs %s (a) and %s (b) differ\n", a, b)
	}
	p := diffPrinter{w: w, verbose: verbose}
	p.section("runfile", d.Runfile)
	if d.RunfileDiff != "" {
		for _, l := range strings.SplitAfter(strings.TrimSuffix(d.RunfileDiff, "\n"), "\n") {
			fmt.Fprintf(w, "    %s", l)
		}
		fmt.Fprintln(w)
	}
	p.section("image", d.Image)
	p.section("args", d.Args)
	p.section("env", d.Env)
	p.section("mounts", d.Mounts)
	p.section("runtime", d.Runtime)
	p.section("host", d.Host)
	p.kernel(d.SystemKernel)
	if pd := d.Packages; pd != nil && pd.Differs() {
		fmt.Fprintf(w, "\npackages: %d changed, %d added, %d removed, %d same\n", len(pd.Changed), len(pd.Added), len(pd.Removed), pd.Same)
		var l limitedList
		for _, part := range []struct {
			mark string
			pcs  []history.PackageChange
		}{{"~", pd.Changed}, {"+", pd.Added}, {"-", pd.Removed}} {
			for _, pc := range part.pcs {
				l.line(p, "  %s %s\n", part.mark, packageChangeText(pc))
			}
		}
		l.more(p, "packages")
	}
	p.files("inputs", d.Inputs)
	p.files("outputs", d.Outputs)
	p.section("exit", d.Exit)
	fmt.Fprintf(w, "\nduration: %.3fs -> %.3fs\n", d.DurationSeconds[0], d.DurationSeconds[1])
	return nil
}

// diffPrinter prints the sections of a diff; without verbose, long lists
// stop at maxListed lines.
type diffPrinter struct {
	w       io.Writer
	verbose bool
}

func (p diffPrinter) section(name string, cs []history.Change) {
	if len(cs) == 0 {
		return
	}
	fmt.Fprintf(p.w, "\n%s:\n", name)
	for _, c := range cs {
		fmt.Fprintf(p.w, "  %s\n", changeLine(c))
	}
}

func (p diffPrinter) kernel(k *history.KernelDiff) {
	if k == nil {
		return
	}
	fmt.Fprintf(p.w, "\nsystem kernel: %s\n", k.Summary)
	fmt.Fprintf(p.w, "  snapshot %s -> %s\n", shortHash(k.A), shortHash(k.B))
	for i, c := range k.Changes {
		if !p.verbose && i == maxListed {
			fmt.Fprintf(p.w, "  ... and %d more settings (all of them with -v)\n", len(k.Changes)-maxListed)
			break
		}
		fmt.Fprintf(p.w, "  %s\n", changeLine(c))
	}
}

func (p diffPrinter) files(name string, fd history.FilesDiff) {
	if !fd.Differs() {
		return
	}
	fmt.Fprintf(p.w, "\n%s: %d changed, %d added, %d removed, %d same\n", name, len(fd.Changed), len(fd.Added), len(fd.Removed), fd.Same)
	var l limitedList
	for _, part := range []struct {
		mark string
		fcs  []history.FileChange
	}{{"~", fd.Changed}, {"+", fd.Added}, {"-", fd.Removed}} {
		for _, fc := range part.fcs {
			l.line(p, "  %s %s  %s\n", part.mark, history.FileLabel(fc.Name, fc.Path), fileChangeText(fc))
		}
	}
	l.more(p, "files")
}

// limitedList prints up to maxListed lines unless verbose, and then says
// how many more there were.
type limitedList struct{ shown, total int }

func (l *limitedList) line(p diffPrinter, format string, args ...any) {
	l.total++
	if !p.verbose && l.shown == maxListed {
		return
	}
	l.shown++
	fmt.Fprintf(p.w, format, args...)
}

func (l *limitedList) more(p diffPrinter, what string) {
	if l.shown < l.total {
		fmt.Fprintf(p.w, "  ... and %d more %s (all of them with -v)\n", l.total-l.shown, what)
	}
}

func changeLine(c history.Change) string {
	s := fmt.Sprintf("%s: %s -> %s", c.Field, valueText(c.A), valueText(c.B))
	if c.Info {
		s += "  (informational)"
	}
	return s
}

func valueText(v any) string {
	switch x := v.(type) {
	case nil:
		return "(none)"
	case string:
		if x == "" {
			return `""`
		}
		return x
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func fileChangeText(fc history.FileChange) string {
	side := func(f *core.FileRecord) string {
		switch {
		case f == nil:
			return "(none)"
		case f.Link != "":
			return "link to " + f.Link
		}
		return fmt.Sprintf("sha256:%s %s", shortHash(f.SHA256), core.HumanBytes(f.Size))
	}
	switch {
	case fc.A == nil:
		return side(fc.B)
	case fc.B == nil:
		return side(fc.A)
	}
	return side(fc.A) + " -> " + side(fc.B)
}

// packageChangeText is "numpy 1.24.2 -> 1.26.4 (pypi)".
func packageChangeText(pc history.PackageChange) string {
	var v string
	switch {
	case pc.A == "":
		v = pc.B
	case pc.B == "":
		v = pc.A
	default:
		v = pc.A + " -> " + pc.B
	}
	return fmt.Sprintf("%s %s (%s)", pc.Name, v, pc.Ecosystem)
}
