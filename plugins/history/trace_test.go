package history

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
)

// fakeTraceStore is runs in memory, looked up by file content.
type fakeTraceStore struct{ runs []core.Run }

func (f *fakeTraceStore) ContentRuns(_ context.Context, sha, kind string, limit int) ([]core.Run, int, error) {
	var out []core.Run
	for i := len(f.runs) - 1; i >= 0; i-- { // newest last in the slice
		files := f.runs[i].Outputs
		if kind == core.MountInput {
			files = f.runs[i].Inputs
		}
		for _, fr := range files {
			if fr.SHA256 == sha {
				out = append(out, f.runs[i])
				break
			}
		}
	}
	return out[:min(len(out), limit)], len(out), nil
}

func (f *fakeTraceStore) RunFiles(_ context.Context, id string) ([]core.FileRecord, []core.FileRecord, error) {
	for _, r := range f.runs {
		if r.ID == id {
			return r.Inputs, r.Outputs, nil
		}
	}
	return nil, nil, fmt.Errorf("run %s: %w", id, core.ErrNotFound)
}

func hexOf(s string) string { return strings.Repeat(s, 64)[:64] }

func fakeRun(i int, in, out string) core.Run {
	return core.Run{ID: fmt.Sprintf("%032x", i), Commit: hexOf("c"), ImageDigest: "sha256:" + hexOf("e"), Status: core.RunSucceeded,
		Created: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC),
		Inputs:  []core.FileRecord{{Name: "data", Path: "in", SHA256: in}}, Outputs: []core.FileRecord{{Name: "/out", Path: "out", SHA256: out}}}
}

func TestTraceRefusesAndFinds(t *testing.T) {
	ctx := context.Background()
	raw, mid, top := hexOf("a"), hexOf("b"), hexOf("d")
	st := &fakeTraceStore{runs: []core.Run{fakeRun(1, raw, mid), fakeRun(2, mid, top)}}
	for i := 3; i < 30; i++ { // 27 more runs read the raw data
		st.runs = append(st.runs, fakeRun(i, raw, hexOf(fmt.Sprint(i%10))))
	}
	if _, err := Trace(ctx, st, "sha256:nothex", TraceOptions{}); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("malformed digest: %v, want ErrInvalid", err)
	}
	if _, err := Trace(ctx, st, hexOf("f"), TraceOptions{}); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("unknown content: %v, want ErrNotFound", err)
	}
	l, err := Trace(ctx, st, top, TraceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Runs) != 2 || !l.Content(ContentID(raw)).Raw || l.Content(ContentID(top)).Raw {
		t.Errorf("up from the top: %d runs, want 2 and the raw data raw", len(l.Runs))
	}
	l, err = Trace(ctx, st, raw, TraceOptions{Direction: Down, Depth: 1})
	if err != nil {
		t.Fatal(err)
	}
	root := l.Content(l.Root)
	if root.RunsTotal != 28 || len(root.Runs) != DefaultMaxRuns || root.RunsOmitted != 28-DefaultMaxRuns {
		t.Errorf("down from shared content: %d total, %d followed, %d omitted", root.RunsTotal, len(root.Runs), root.RunsOmitted)
	}
	for _, c := range l.Contents {
		if c.Level == 1 && c.RunsTotal > 0 && !c.Truncated {
			t.Errorf("--depth 1 followed %s past the first runs", c.ID)
		}
	}
	if len(l.Runs) != DefaultMaxRuns {
		t.Errorf("--depth 1 from shared content: %d runs, want %d", len(l.Runs), DefaultMaxRuns)
	}
}
