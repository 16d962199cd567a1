package history

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/runprov/runprov/core"
)

// TraceStore is what Trace reads: runs found by the content of their files.
type TraceStore interface {
	// ContentRuns returns up to limit runs, newest first, that have a file
	// of kind (core.MountInput or core.MountOutput) with content sha256
	// (hex), without manifests, and how many there are in all; none is
	// not an error.
	ContentRuns(ctx context.Context, sha256, kind string, limit int) ([]core.Run, int, error)
	// RunFiles returns the input and output manifests of a run (full id).
	RunFiles(ctx context.Context, runID string) (inputs, outputs []core.FileRecord, err error)
}

// Direction is which way Trace follows content.
type Direction string

const (
	// Up follows content to the runs that produced it, then their inputs.
	Up Direction = "up"
	// Down follows content to the runs that used it, then their outputs.
	Down Direction = "down"
)

// Trace defaults: how deep (in runs) and how wide a trace goes.
const (
	DefaultTraceDepth = 10
	DefaultMaxRuns    = 20  // runs per content node
	DefaultMaxFiles   = 100 // files followed per run
	maxNames          = 5   // file names kept per content node
)

// TraceOptions shape a trace; zero values take the defaults.
type TraceOptions struct {
	Direction Direction
	Depth     int
	MaxRuns   int
	MaxFiles  int
}

// Lineage is a trace as a graph: content nodes (by sha256) and run nodes,
// joined by edges "used" (content → run) and "generated" (run → content).
// Nodes are listed in the order the breadth-first walk met them, the root
// first; node ids are "sha256:HEX" and "run:ID".
type Lineage struct {
	Root      string         `json:"root"`
	Direction Direction      `json:"direction"`
	Depth     int            `json:"depth"`
	Contents  []*ContentNode `json:"contents"`
	Runs      []*RunNode     `json:"runs"`
	Edges     []Edge         `json:"edges"`
	// Opposite is how many runs relate to the root the other way: used
	// it (for up) or produced it (for down).
	Opposite int `json:"opposite_runs"`

	contents map[string]*ContentNode
	runs     map[string]*RunNode
	edges    map[Edge]bool
}

// ContentNode is one content (a sha256) and the runs followed from it.
type ContentNode struct {
	ID     string   `json:"id"`
	SHA256 string   `json:"sha256"`
	Size   int64    `json:"size"`
	Names  []string `json:"names"` // file labels it had in the runs' manifests
	Level  int      `json:"level"` // runs between the root and it
	// Raw: no run produced this content (known for every node walking
	// up, for the root walking down).
	Raw bool `json:"raw"`
	// Runs are the run nodes followed from here, newest first: producers
	// (up) or users (down); RunsTotal counts all of them, RunsOmitted
	// those over the fan-out cap.
	Runs        []string `json:"runs"`
	RunsTotal   int      `json:"runs_total"`
	RunsOmitted int      `json:"runs_omitted"`
	// Truncated: the depth limit stopped the walk here.
	Truncated bool `json:"truncated"`
}

// RunNode is one run of a trace and its manifests.
type RunNode struct {
	ID          string    `json:"id"`
	Run         string    `json:"run"`
	Repo        string    `json:"repo"`
	Path        string    `json:"path"`
	Commit      string    `json:"commit"`
	ImageRef    string    `json:"image_ref"`
	ImageDigest string    `json:"image_digest"`
	Status      string    `json:"status"`
	ExitCode    *int      `json:"exit_code"`
	Created     time.Time `json:"created_at"`
	Started     string    `json:"started_at"`
	Ended       string    `json:"ended_at"`
	Level       int       `json:"level"`
	Inputs      []FileRef `json:"inputs"`
	Outputs     []FileRef `json:"outputs"`
	// FilesOmitted counts files over the cap, neither listed nor followed.
	FilesOmitted int `json:"files_omitted"`
}

// FileRef is one manifest entry of a run node.
type FileRef struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // "" for links
}

// Label is how the file is shown: NAME/PATH.
func (f FileRef) Label() string { return FileLabel(f.Name, f.Path) }

// Edge joins a content node and a run node.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
	Kind string `json:"kind"` // "used" or "generated"
	File string `json:"file"` // the file label in the run's manifest
}

var hex64 = core.LazyRegexp(`^[0-9a-f]{64}$`)

// ContentID is the node id of content sha256 (hex).
func ContentID(sha256 string) string { return "sha256:" + sha256 }

// Trace walks the lineage of content sha256 (hex) breadth first. Each run
// and content is visited once, so cycles end. It returns core.ErrInvalid
// for a malformed digest and core.ErrNotFound when no run produced or used
// the content.
func Trace(ctx context.Context, st TraceStore, sha256 string, opts TraceOptions) (*Lineage, error) {
	sha256 = strings.ToLower(strings.TrimPrefix(sha256, "sha256:"))
	if !hex64().MatchString(sha256) {
		return nil, fmt.Errorf("%w: %q is not a sha256 digest (64 hex digits)", core.ErrInvalid, sha256)
	}
	opts = opts.withDefaults()
	l := NewLineage(ContentID(sha256), opts.Direction, opts.Depth)
	root := l.content(sha256, 0)
	queue := []*ContentNode{root}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		more, err := l.expand(ctx, st, c, opts)
		if err != nil {
			return nil, err
		}
		queue = append(queue, more...)
	}
	other := core.MountInput
	if opts.Direction == Down {
		other = core.MountOutput
	}
	_, n, err := st.ContentRuns(ctx, sha256, other, 0)
	if err != nil {
		return nil, err
	}
	l.Opposite = n
	if opts.Direction == Down {
		root.Raw = n == 0
	}
	if root.RunsTotal == 0 && n == 0 {
		return nil, fmt.Errorf("sha256:%s: %w: no run produced or used this content", sha256, core.ErrNotFound)
	}
	return l, nil
}

func (o TraceOptions) withDefaults() TraceOptions {
	if o.Direction == "" {
		o.Direction = Up
	}
	if o.Depth <= 0 {
		o.Depth = DefaultTraceDepth
	}
	if o.MaxRuns <= 0 {
		o.MaxRuns = DefaultMaxRuns
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = DefaultMaxFiles
	}
	return o
}

// NewLineage is an empty graph.
func NewLineage(root string, d Direction, depth int) *Lineage {
	return &Lineage{Root: root, Direction: d, Depth: depth, Contents: []*ContentNode{}, Runs: []*RunNode{}, Edges: []Edge{},
		contents: map[string]*ContentNode{}, runs: map[string]*RunNode{}, edges: map[Edge]bool{}}
}

// expand finds the runs on c's side of the walk, adds them with their
// edges, and returns the content nodes first met through them.
func (l *Lineage) expand(ctx context.Context, st TraceStore, c *ContentNode, opts TraceOptions) ([]*ContentNode, error) {
	kind := core.MountOutput
	if opts.Direction == Down {
		kind = core.MountInput
	}
	limit := opts.MaxRuns
	if c.Level >= opts.Depth {
		limit = 0
	}
	rs, total, err := st.ContentRuns(ctx, c.SHA256, kind, limit)
	if err != nil {
		return nil, err
	}
	c.RunsTotal, c.RunsOmitted = total, total-len(rs)
	c.Raw = opts.Direction == Up && total == 0
	c.Truncated = limit == 0 && total > 0
	var next []*ContentNode
	for i := range rs {
		rn, seen := l.runs[rs[i].ID]
		if !seen {
			in, out, err := st.RunFiles(ctx, rs[i].ID)
			if err != nil {
				return nil, err
			}
			rn = l.AddRun(&rs[i], in, out, c.Level+1, opts.MaxFiles)
		}
		c.Runs = append(c.Runs, rn.ID)
		near, far := rn.Outputs, rn.Inputs
		if opts.Direction == Down {
			near, far = rn.Inputs, rn.Outputs
		}
		for _, f := range near {
			if f.SHA256 == c.SHA256 {
				l.link(c, rn, f, opts.Direction == Down)
			}
		}
		if seen {
			continue
		}
		for _, f := range far {
			if f.SHA256 == "" {
				continue
			}
			cn, ok := l.contents[f.SHA256]
			if !ok {
				cn = l.content(f.SHA256, rn.Level)
				next = append(next, cn)
			}
			l.link(cn, rn, f, opts.Direction == Up)
		}
	}
	return next, nil
}

// content returns the node of sha256, adding it at level when new.
func (l *Lineage) content(sha256 string, level int) *ContentNode {
	if c, ok := l.contents[sha256]; ok {
		return c
	}
	c := &ContentNode{ID: ContentID(sha256), SHA256: sha256, Size: -1, Names: []string{}, Level: level, Runs: []string{}}
	l.contents[sha256] = c
	l.Contents = append(l.Contents, c)
	return c
}

// AddRun adds run r with its manifests (up to maxFiles of each) at level.
func (l *Lineage) AddRun(r *core.Run, inputs, outputs []core.FileRecord, level, maxFiles int) *RunNode {
	if rn, ok := l.runs[r.ID]; ok {
		return rn
	}
	rn := &RunNode{ID: "run:" + r.ID, Run: r.ID, Repo: r.Repo, Path: r.Path, Commit: r.Commit, ImageRef: r.ImageRef,
		ImageDigest: r.ImageDigest, Status: string(r.Status), ExitCode: r.ExitCode, Created: r.Created,
		Started: rfc3339(r.Started), Ended: rfc3339(r.Ended), Level: level}
	refs := func(fs []core.FileRecord) []FileRef {
		out := make([]FileRef, 0, min(len(fs), maxFiles))
		for _, f := range fs[:min(len(fs), maxFiles)] {
			out = append(out, FileRef{Name: f.Name, Path: f.Path, Size: f.Size, SHA256: f.SHA256})
		}
		rn.FilesOmitted += len(fs) - len(out)
		return out
	}
	rn.Inputs, rn.Outputs = refs(inputs), refs(outputs)
	l.runs[r.ID] = rn
	l.Runs = append(l.Runs, rn)
	return rn
}

// link adds the edge between content c and run rn for file f: "used"
// when used is true (f is an input of rn), else "generated".
func (l *Lineage) link(c *ContentNode, rn *RunNode, f FileRef, used bool) {
	e := Edge{From: rn.ID, To: c.ID, Kind: "generated", File: f.Label()}
	if used {
		e = Edge{From: c.ID, To: rn.ID, Kind: "used", File: f.Label()}
	}
	if c.Size < 0 {
		c.Size = f.Size
	}
	if len(c.Names) < maxNames && !contains(c.Names, f.Label()) {
		c.Names = append(c.Names, f.Label())
	}
	if !l.edges[e] {
		l.edges[e] = true
		l.Edges = append(l.Edges, e)
	}
}

// Content returns the node of a content id ("sha256:HEX"), or nil.
func (l *Lineage) Content(id string) *ContentNode {
	return l.contents[strings.TrimPrefix(id, "sha256:")]
}

// RunNode returns the node of a run id ("run:ID"), or nil.
func (l *Lineage) RunNode(id string) *RunNode { return l.runs[strings.TrimPrefix(id, "run:")] }

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
