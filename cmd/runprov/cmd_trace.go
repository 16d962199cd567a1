package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/plugins/history"
)

var _ history.TraceStore = (*sqlite.Store)(nil)

// exitNoMatch is trace's "nothing found", as grep's 1.
const exitNoMatch = 1

func newTraceCmd(a *app) *cobra.Command {
	var (
		opts   history.TraceOptions
		down   bool
		dot    bool
		format string
	)
	cmd := &cobra.Command{
		Use:   "trace FILE|sha256:HEX [--down] [--depth N] [--json|--dot|--format prov]",
		Short: "Show which runs produced (or used) this content, recursively",
		Long: `Trace the lineage of a file by its content (sha256), so a file copied or
renamed between runs is still linked.

By default trace walks up: the runs that produced this content (newest
first), with their commit, Runfile, image, status and time; then each run's
inputs and the runs that produced those, down to raw data (content no run
produced). With --down it walks the other way: every run that used this
content, what it produced, and who used that.

At most --max-runs runs are followed per content (content many runs share,
such as an empty file, is capped and says how many were left out) and at most
--depth runs deep. Each run and content is visited once.

Output: an indented tree; --json a graph (nodes "contents" and "runs",
"edges" used: content -> run and generated: run -> content; schema in
testdata/schemas/trace.schema.json); --dot Graphviz; --format prov one W3C
PROV-JSON document.

Exit status: 0 found, 1 no run produced or used the content, 125 errors.`,
		Args: exactArgs("trace", "which file? give its path or sha256:HEX"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dot {
				format = "dot"
			}
			switch format {
			case "", "text", "dot", "prov", "json":
			default:
				return usagef("--format %q: want text, json, dot or prov", format)
			}
			if a.json {
				format = "json"
			}
			if down {
				opts.Direction = history.Down
			}
			sum, err := contentDigest(args[0])
			if err != nil {
				return err
			}
			t, err := a.openRead(cmd.Context())
			if err != nil {
				return err
			}
			l, err := history.Trace(cmd.Context(), t.store, sum, opts)
			if errors.Is(err, core.ErrNotFound) {
				name := "sha256:" + sum
				if !strings.HasPrefix(args[0], "sha256:") {
					name = args[0] + " (" + name + ")"
				}
				fmt.Fprintf(a.stderr, "runprov: %s: no run produced or used this content\n", name)
				return exitStatus{exitNoMatch}
			}
			if err != nil {
				return err
			}
			return writeTrace(a.stdout, l, format)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&down, "down", false, "follow the runs that used the content and what they produced")
	f.IntVar(&opts.Depth, "depth", history.DefaultTraceDepth, "how many runs deep to follow")
	f.IntVar(&opts.MaxRuns, "max-runs", history.DefaultMaxRuns, "runs followed per content; the rest are counted")
	f.BoolVar(&dot, "dot", false, "print a Graphviz digraph")
	f.StringVar(&format, "format", "", "text, json, dot or prov (W3C PROV-JSON)")
	return cmd
}

func writeTrace(w io.Writer, l *history.Lineage, format string) error {
	switch format {
	case "json":
		return printJSON(w, l)
	case "dot":
		return history.WriteDot(w, l)
	case "prov":
		return printJSON(w, history.TraceProv(l, history.ExportOptions{Version: version}))
	}
	return history.WriteTraceText(w, l)
}

// contentDigest is the sha256 (hex) named by arg: "sha256:HEX", or the
// content of the file arg.
func contentDigest(arg string) (string, error) {
	if hexPart, ok := strings.CutPrefix(arg, "sha256:"); ok {
		return strings.ToLower(hexPart), nil
	}
	f, err := os.Open(arg)
	if err != nil {
		return "", advise(fmt.Errorf("trace: %w", err), adviceTraceFile, "")
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return "", advise(fmt.Errorf("trace: %s is a directory", arg), adviceTraceDir, arg)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("trace: read %s: %w", arg, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
