package history

import (
	"context"
	"sort"

	"github.com/runprov/runprov/core"
)

// Lineage graph limits for a report: beyond them the graph keeps the
// newest runs and the content that links them.
const (
	graphMaxRuns     = 300
	graphMaxContents = 400
)

// ReportLineage is the lineage among runs, by content, as Trace builds it:
// content one run produced and another used links them; inputs no run in
// runs produced are sources, marked raw when no run in the store produced
// them (asked through st); outputs no run in runs used are leaves, kept
// while the graph is small. It returns nil for no runs.
func ReportLineage(ctx context.Context, st TraceStore, runs []ReportRun) (*Lineage, error) {
	if len(runs) == 0 {
		return nil, nil
	}
	l := NewLineage("", Up, 1)
	produced := map[string]bool{}
	used := map[string]bool{}
	kept := runs[:min(len(runs), graphMaxRuns)]
	for _, rr := range kept {
		for _, f := range rr.Record.Outputs {
			produced[f.SHA256] = true
		}
		for _, f := range rr.Record.Inputs {
			used[f.SHA256] = true
		}
	}
	for _, rr := range kept {
		r := &rr.Record.Run
		rn := l.AddRun(r, r.Inputs, r.Outputs, 1, DefaultMaxFiles)
		for _, f := range rn.Inputs {
			if f.SHA256 == "" {
				continue
			}
			l.link(l.content(f.SHA256, 0), rn, f, true)
		}
		for _, f := range rn.Outputs {
			if f.SHA256 == "" || (!used[f.SHA256] && len(l.Contents) >= graphMaxContents) {
				continue
			}
			l.link(l.content(f.SHA256, 1), rn, f, false)
		}
	}
	// Sources: raw unless some run outside the report produced them.
	for _, c := range l.Contents {
		if produced[c.SHA256] {
			continue
		}
		_, n, err := st.ContentRuns(ctx, c.SHA256, core.MountOutput, 0)
		if err != nil {
			return nil, err
		}
		c.Raw, c.RunsTotal = n == 0, n
	}
	return l, nil
}

// svgGraph is a lineage laid out in layers, left to right: each node's
// layer is one more than the deepest node with an edge into it.
type svgGraph struct {
	Width, Height int
	Nodes         []svgNode
	Edges         []svgEdge
}

type svgNode struct {
	X, Y, W, H   float64
	Run          bool
	Raw          bool
	Status       string
	Line1, Line2 string
	Anchor       string // the run's section
	Title        string
}

type svgEdge struct{ X1, Y1, X2, Y2 float64 }

func layoutGraph(l *Lineage) *svgGraph {
	if l == nil || len(l.Runs) == 0 {
		return nil
	}
	const (
		nodeW, nodeH = 200.0, 34.0
		gapX, gapY   = 50.0, 8.0
	)
	ids := make([]string, 0, len(l.Contents)+len(l.Runs))
	for _, c := range l.Contents {
		ids = append(ids, c.ID)
	}
	for _, r := range l.Runs {
		ids = append(ids, r.ID)
	}
	layer := map[string]int{}
	// Longest path by relaxation; a cycle stops after len(ids) rounds.
	for range len(ids) {
		changed := false
		for _, e := range l.Edges {
			if layer[e.To] < layer[e.From]+1 {
				layer[e.To] = layer[e.From] + 1
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	columns := map[int][]string{}
	maxLayer := 0
	for _, id := range ids {
		columns[layer[id]] = append(columns[layer[id]], id)
		maxLayer = max(maxLayer, layer[id])
	}
	g := &svgGraph{}
	pos := map[string][2]float64{}
	tallest := 0
	for k := 0; k <= maxLayer; k++ {
		col := columns[k]
		sort.SliceStable(col, func(i, j int) bool { return col[i] < col[j] })
		tallest = max(tallest, len(col))
		for i, id := range col {
			x, y := 10+float64(k)*(nodeW+gapX), 10+float64(i)*(nodeH+gapY)
			pos[id] = [2]float64{x, y}
			g.Nodes = append(g.Nodes, graphNode(l, id, x, y, nodeW, nodeH))
		}
	}
	for _, e := range l.Edges {
		a, b := pos[e.From], pos[e.To]
		g.Edges = append(g.Edges, svgEdge{a[0] + nodeW, a[1] + nodeH/2, b[0], b[1] + nodeH/2})
	}
	g.Width = int(20 + float64(maxLayer+1)*(nodeW+gapX))
	g.Height = int(20 + float64(tallest)*(nodeH+gapY))
	return g
}

func graphNode(l *Lineage, id string, x, y, w, h float64) svgNode {
	n := svgNode{X: x, Y: y, W: w, H: h}
	if r := l.RunNode(id); r != nil {
		n.Run, n.Status, n.Anchor = true, r.Status, "run-"+r.Run
		n.Line1 = "run " + core.ShortRunID(r.Run) + " " + r.Status
		n.Line2 = shortHex(r.Commit) + " " + r.Path
		n.Title = "run " + r.Run
		return n.clip()
	}
	c := l.Content(id)
	n.Raw = c.Raw
	n.Line1 = "sha256:" + shortHex(c.SHA256)
	if c.Raw {
		n.Line1 += " raw"
	}
	if len(c.Names) > 0 {
		n.Line2 = c.Names[0]
	}
	n.Title = "sha256:" + c.SHA256
	return n.clip()
}

// clip shortens the lines to what a node's box holds.
func (n svgNode) clip() svgNode {
	const chars = 29
	for _, s := range []*string{&n.Line1, &n.Line2} {
		if r := []rune(*s); len(r) > chars {
			*s = string(r[:chars-1]) + "…"
		}
	}
	return n
}
