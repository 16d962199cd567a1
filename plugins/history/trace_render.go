package history

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/runprov/runprov/core"
)

// WriteTraceText writes the lineage as an indented tree from the root: each
// content with the runs that produced it (up) or used it (down), each run
// with the content on its far side. A run met again is named, not repeated.
func WriteTraceText(w io.Writer, l *Lineage) error {
	tw := &treeWriter{w: w, l: l, shown: map[string]bool{}}
	tw.content(l.Content(l.Root), 0, "")
	if l.Direction == Up && l.Opposite > 0 {
		tw.printf(0, "(%d run(s) used this content: runprov trace --down)", l.Opposite)
	}
	return tw.err
}

type treeWriter struct {
	w     io.Writer
	l     *Lineage
	shown map[string]bool
	err   error
}

func (t *treeWriter) printf(depth int, format string, args ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, "%s%s\n", strings.Repeat("  ", depth), fmt.Sprintf(format, args...))
	}
}

func (t *treeWriter) content(c *ContentNode, depth int, label string) {
	if label == "" && len(c.Names) > 0 {
		label = c.Names[0]
	}
	line := "sha256:" + c.SHA256
	if label != "" {
		line = label + "  " + line
	}
	switch {
	case c.Raw:
		line += "  raw (no run produced it)"
	case c.Truncated:
		line += fmt.Sprintf("  ... %d run(s) beyond --depth %d", c.RunsTotal, t.l.Depth)
	}
	t.printf(depth, "%s", line)
	verb := "produced by"
	if t.l.Direction == Down {
		verb = "used by"
	}
	for _, id := range c.Runs {
		t.run(t.l.RunNode(id), depth+1, verb)
	}
	if c.RunsOmitted > 0 && !c.Truncated {
		t.printf(depth+1, "... and %d more run(s) (of %d; raise --max-runs)", c.RunsOmitted, c.RunsTotal)
	}
}

func (t *treeWriter) run(r *RunNode, depth int, verb string) {
	if t.shown[r.ID] {
		t.printf(depth, "%s run %s (shown above)", verb, core.ShortRunID(r.Run))
		return
	}
	t.shown[r.ID] = true
	t.printf(depth, "%s run %s  %s  %s  commit %s %s  image %s", verb, core.ShortRunID(r.Run), r.Status,
		TermTime(r.Created), shortHex(r.Commit), r.Path, imageText(r.ImageRef, r.ImageDigest))
	far, kind := r.Inputs, "input"
	if t.l.Direction == Down {
		far, kind = r.Outputs, "output"
	}
	seen := map[string]bool{}
	for _, f := range far {
		if f.SHA256 == "" || seen[f.SHA256] {
			continue
		}
		seen[f.SHA256] = true
		t.content(t.l.Content(f.SHA256), depth+1, kind+" "+f.Label())
	}
	if r.FilesOmitted > 0 {
		t.printf(depth+1, "... %d file(s) over the cap not followed", r.FilesOmitted)
	}
}

func imageText(ref, digest string) string {
	name, _, _ := strings.Cut(ref, "@")
	return name + "@" + shortHex(strings.TrimPrefix(digest, "sha256:"))
}

// WriteDot writes the lineage as a Graphviz digraph: content as ellipses
// (raw content shaded), runs as boxes, edges in the direction data flowed.
func WriteDot(w io.Writer, l *Lineage) error {
	var b strings.Builder
	b.WriteString("digraph lineage {\n  rankdir=LR;\n  node [fontname=\"monospace\", fontsize=10];\n")
	for _, c := range l.Contents {
		label := "sha256:" + shortHex(c.SHA256)
		if len(c.Names) > 0 {
			label = c.Names[0] + "\n" + label
		}
		attrs := "shape=ellipse"
		switch {
		case c.Raw:
			label += "\nraw"
			attrs += ", style=filled, fillcolor=\"#e8e8e8\""
		case c.Truncated:
			label += "\n(beyond --depth)"
			attrs += ", style=dashed"
		}
		if c.RunsOmitted > 0 && !c.Truncated {
			label += "\n+" + strconv.Itoa(c.RunsOmitted) + " more runs"
		}
		fmt.Fprintf(&b, "  %s [%s, label=%s];\n", dotQuote(c.ID), attrs, dotQuote(label))
	}
	for _, r := range l.Runs {
		label := "run " + core.ShortRunID(r.Run) + "\n" + r.Status + "\n" + shortHex(r.Commit) + " " + r.Path
		fmt.Fprintf(&b, "  %s [shape=box, label=%s];\n", dotQuote(r.ID), dotQuote(label))
	}
	for _, e := range l.Edges {
		fmt.Fprintf(&b, "  %s -> %s [label=%s];\n", dotQuote(e.From), dotQuote(e.To), dotQuote(e.File))
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// dotQuote is a Graphviz double-quoted string.
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// TraceProv is the lineage as one W3C PROV-JSON document: an activity per
// run, an entity per content (by sha256; raw content says so), used and
// wasGeneratedBy for the edges, the Runfile as each run's plan and runprov
// as the software agent.
func TraceProv(l *Lineage, opts ExportOptions) *ProvDocument {
	doc := &ProvDocument{
		Prefix: map[string]string{
			"runprov": ProvNamespace,
			"xsd":     "http://www.w3.org/2001/XMLSchema#",
			"prov":    "http://www.w3.org/ns/prov#",
		},
		Entity: map[string]map[string]any{}, Activity: map[string]map[string]any{}, Agent: map[string]map[string]any{},
		Used: map[string]map[string]any{}, WasGeneratedBy: map[string]map[string]any{},
		WasAssociatedWith: map[string]map[string]any{},
	}
	n := 0
	rel := func(m map[string]map[string]any, attrs map[string]any) {
		n++
		m["_:r"+strconv.Itoa(n)] = attrs
	}
	tool := "runprov:software/runprov"
	doc.Agent[tool] = map[string]any{"prov:type": qname("prov:SoftwareAgent"), "prov:label": "runprov " + orUnknown(opts.Version)}
	entity := func(c *ContentNode) string { return "runprov:content/sha256/" + c.SHA256 }
	for _, c := range l.Contents {
		e := map[string]any{"prov:type": qname("runprov:File"), "runprov:sha256": c.SHA256, "runprov:raw": c.Raw}
		if len(c.Names) > 0 {
			e["prov:label"] = c.Names[0]
		}
		if c.Size >= 0 {
			e["runprov:size"] = typed(strconv.FormatInt(c.Size, 10), "xsd:long")
		}
		doc.Entity[entity(c)] = e
	}
	activity := func(r *RunNode) string { return "runprov:run/" + r.Run }
	for _, r := range l.Runs {
		act := map[string]any{
			"prov:type": qname("runprov:Run"), "prov:label": "runprov run " + core.ShortRunID(r.Run),
			"runprov:status": r.Status, "runprov:commit": r.Commit, "runprov:image_digest": r.ImageDigest,
			"runprov:created_at": typed(rfc3339(r.Created), "xsd:dateTime"),
		}
		if r.Started != "" {
			act["prov:startTime"] = r.Started
		}
		if r.Ended != "" {
			act["prov:endTime"] = r.Ended
		}
		doc.Activity[activity(r)] = act
		plan := "runprov:runfile/" + r.Commit + "/" + provLocal(r.Path)
		doc.Entity[plan] = map[string]any{"prov:type": qname("prov:Plan"), "prov:label": r.Path, "runprov:repo": r.Repo, "runprov:commit": r.Commit}
		rel(doc.WasAssociatedWith, map[string]any{"prov:activity": activity(r), "prov:agent": tool, "prov:plan": plan})
	}
	for _, e := range l.Edges {
		if e.Kind == "used" {
			r, c := l.RunNode(e.To), l.Content(e.From)
			rel(doc.Used, map[string]any{"prov:activity": activity(r), "prov:entity": entity(c), "runprov:file": e.File})
			continue
		}
		r, c := l.RunNode(e.From), l.Content(e.To)
		g := map[string]any{"prov:entity": entity(c), "prov:activity": activity(r), "runprov:file": e.File}
		if r.Ended != "" {
			g["prov:time"] = r.Ended
		}
		rel(doc.WasGeneratedBy, g)
	}
	return doc
}
