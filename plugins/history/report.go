package history

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/runprov/runprov/core"
)

// The HTML report: one self-contained file (inline CSS, JS and SVG, no
// network) made with html/template, so every recorded value is escaped.

//go:embed report.html.tmpl
var reportTemplate string

// reportMaxChanges caps the changes listed per diff section, to keep a
// report of thousands of runs readable and small.
const reportMaxChanges = 50

// ReportRun is one run of a report, as the CLI loaded it.
type ReportRun struct {
	Record *Record
	// Runfile is the Runfile text at the run's commit; nil when the store
	// does not hold it.
	Runfile []byte
	// ShowText is what runprov show prints for the run (the CLI may cap
	// its file lists).
	ShowText string
	// Drift compares the previous run of the same commit with this one;
	// nil for a commit's first run.
	Drift *Diff
}

// ReportInput is everything a report shows.
type ReportInput struct {
	Title     string
	Generated time.Time
	Version   string
	Runs      []ReportRun // newest first
	// Compare is the diff of the two runs chosen for it; nil for none.
	Compare *Diff
	Lineage *Lineage
}

// WriteReport writes the report as one HTML document.
func WriteReport(w io.Writer, in *ReportInput) error {
	t, err := template.New("report").Funcs(reportFuncs).Parse(reportTemplate)
	if err != nil {
		return fmt.Errorf("report template: %w", err)
	}
	view := struct {
		*ReportInput
		Timeline *svgTimeline
		Graph    *svgGraph
	}{in, timeline(in.Runs), layoutGraph(in.Lineage)}
	if err := t.Execute(w, view); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

var reportFuncs = template.FuncMap{
	"short":    core.ShortRunID,
	"shortHex": shortHex,
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"isoTime": func(t time.Time) string { return rfc3339(t) },
	"seconds": func(r core.Run) string {
		d := Duration(&r)
		if d == 0 {
			return "-"
		}
		return fmt.Sprintf("%.3fs", d.Seconds())
	},
	"durationNS": func(r core.Run) int64 { return int64(Duration(&r)) },
	"exit": func(r core.Run) string {
		if r.ExitCode == nil {
			return "-"
		}
		return fmt.Sprint(*r.ExitCode)
	},
	"label":    FileLabel,
	"value":    changeValue,
	"changes":  capChanges,
	"sections": diffSections,
	"more10":   func(n int) int { return max(n-10, 0) },
	"string":   func(b []byte) string { return string(b) },
	"bytes":    core.HumanBytes,
}

func changeValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "(none)"
	case string:
		return x
	}
	return strings.TrimSpace(string(mustJSON(v)))
}

func capChanges(cs []Change) []Change { return cs[:min(len(cs), reportMaxChanges)] }

// diffSection is one titled list of changes of a Diff.
type diffSection struct {
	Title   string
	Changes []Change
}

func diffSections(d *Diff) []diffSection {
	all := []diffSection{{"Runfile", d.Runfile}, {"Image", d.Image}, {"Arguments", d.Args}, {"Environment", d.Env},
		{"Mounts", d.Mounts}, {"Runtime", d.Runtime}, {"Host", d.Host}, {"Exit", d.Exit}}
	if d.SystemKernel != nil {
		all = append(all, diffSection{"System snapshot: " + d.SystemKernel.Summary, d.SystemKernel.Changes})
	}
	var out []diffSection
	for _, s := range all {
		if len(s.Changes) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// svgTimeline is the runs' start and duration as bars, one row a run.
type svgTimeline struct {
	Width, Height int
	Bars          []svgBar
	From, To      time.Time
}

type svgBar struct {
	X, Y, W, H float64
	Run        string
	Status     string
	Title      string
	Label      bool
}

func timeline(runs []ReportRun) *svgTimeline {
	const width, left = 960.0, 110.0
	var rs []*core.Run
	for i := range runs {
		if r := &runs[i].Record.Run; !startOf(r).IsZero() {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	sort.SliceStable(rs, func(i, j int) bool { return startOf(rs[i]).Before(startOf(rs[j])) })
	from, to := startOf(rs[0]), startOf(rs[0])
	for _, r := range rs {
		if e := endOf(r); e.After(to) {
			to = e
		}
	}
	span := max(to.Sub(from).Seconds(), 1e-3)
	row := min(max(600/float64(len(rs)), 3), 16)
	tl := &svgTimeline{Width: int(width), Height: int(row*float64(len(rs))) + 24, From: from, To: to}
	scale := (width - left - 10) / span
	for i, r := range rs {
		x := left + startOf(r).Sub(from).Seconds()*scale
		w := max(endOf(r).Sub(startOf(r)).Seconds()*scale, 2)
		tl.Bars = append(tl.Bars, svgBar{X: x, Y: float64(i)*row + 4, W: w, H: max(row-1, 2), Run: r.ID, Status: string(r.Status),
			Title: fmt.Sprintf("run %s %s: started %s, %.3fs", core.ShortRunID(r.ID), r.Status, rfc3339(startOf(r)), endOf(r).Sub(startOf(r)).Seconds()),
			Label: row >= 12})
	}
	return tl
}

func startOf(r *core.Run) time.Time {
	if !r.Started.IsZero() {
		return r.Started
	}
	return r.Created
}

func endOf(r *core.Run) time.Time {
	if !r.Ended.IsZero() {
		return r.Ended
	}
	return startOf(r)
}
