package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/sqlite/sqlitetest"
)

// runJSON is how two runs are compared: their JSON, so times compare by
// instant and nil vs empty collections do not matter.
func runJSON(t *testing.T, r core.Run) string {
	t.Helper()
	norm := func(v any) any {
		b, _ := json.Marshal(v)
		var out any
		json.Unmarshal(b, &out)
		return out
	}
	m := norm(r).(map[string]any)
	for k, v := range m {
		if v == nil {
			delete(m, k)
		}
		if a, ok := v.([]any); ok && len(a) == 0 {
			delete(m, k)
		}
		if o, ok := v.(map[string]any); ok && len(o) == 0 {
			delete(m, k)
		}
	}
	b, _ := json.MarshalIndent(m, "", " ")
	return string(b)
}

func TestRunByPrefix(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a, b, c := sqlitetest.SyntheticRun(1, 3), sqlitetest.SyntheticRun(2, 0), sqlitetest.SyntheticRun(3, 1)
	a.ID = "abc1" + strings.Repeat("0", 28)
	b.ID = "abc2" + strings.Repeat("0", 28)
	c.ID = "def0" + strings.Repeat("1", 28)
	c.Slurm = &core.SlurmJob{JobID: "42", ArrayTask: new(int), Node: "n1", Partition: "debug"}
	c.ExitCode = nil
	c.Status = core.RunRunning
	c.Ended = time.Time{}
	c.Limits.Timeout = 90 * time.Second
	c.Limits.Note = "cgroup v1: memory limit not applied"
	if err := sqlitetest.InsertRuns(ctx, s.DB(), []core.Run{a, b, c}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		prefix string
		want   core.Run
	}{{"abc1", a}, {a.ID, a}, {"ABC2", b}, {"d", c}} {
		got, err := s.Run(ctx, tc.prefix)
		if err != nil {
			t.Fatalf("Run(%q): %v", tc.prefix, err)
		}
		if g, w := runJSON(t, *got), runJSON(t, tc.want); g != w {
			t.Errorf("Run(%q) read back\n%s\nwant\n%s", tc.prefix, g, w)
		}
	}
	got, _ := s.Run(ctx, "abc1")
	if len(got.Outputs) != 3 || len(got.Inputs) != 1 || len(got.Steps) != 1 {
		t.Errorf("Run: %d outputs, %d inputs, %d steps; want 3, 1, 1", len(got.Outputs), len(got.Inputs), len(got.Steps))
	}

	_, err := s.Run(ctx, "abc")
	if !errors.Is(err, core.ErrAmbiguous) || !strings.Contains(err.Error(), a.ID) || !strings.Contains(err.Error(), b.ID) {
		t.Errorf("Run(abc): %v; want ErrAmbiguous naming both candidates", err)
	}
	if _, err := s.Run(ctx, "ff"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Run(ff): %v; want ErrNotFound", err)
	}
	for _, bad := range []string{"", "xyz", strings.Repeat("a", 33), "ab%"} {
		if _, err := s.Run(ctx, bad); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("Run(%q): %v; want ErrInvalid", bad, err)
		}
	}
}

func TestRunsFilters(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const n = 1000
	if err := sqlitetest.InsertSynthetic(ctx, s.DB(), 0, n, 0, true); err != nil {
		t.Fatal(err)
	}
	// A run in a second repo, created last.
	other := sqlitetest.SyntheticRun(n, 0)
	other.Repo = "other"
	if err := sqlitetest.InsertRuns(ctx, s.DB(), []core.Run{other}); err != nil {
		t.Fatal(err)
	}
	all := make([]core.Run, 0, n+1)
	for i := n; i >= 0; i-- { // newest first
		r := sqlitetest.SyntheticRun(i, 0)
		if i == n {
			r.Repo = "other"
		}
		all = append(all, r)
	}
	img := sqlitetest.SyntheticRun(3, 0).ImageDigest
	commit := sqlitetest.SyntheticRun(4, 0).Commit
	since := sqlitetest.Base.Add(900 * time.Second)
	for _, tc := range []struct {
		name string
		f    core.RunFilter
		keep func(core.Run) bool
	}{
		{"all", core.RunFilter{}, func(core.Run) bool { return true }},
		{"limit", core.RunFilter{Limit: 7}, func(core.Run) bool { return true }},
		{"status", core.RunFilter{Status: core.RunFailed}, func(r core.Run) bool { return r.Status == core.RunFailed }},
		{"commit prefix", core.RunFilter{Commit: commit[:6]}, func(r core.Run) bool { return r.Commit == commit }},
		{"image with sha256:", core.RunFilter{ImageDigest: img[:15]}, func(r core.Run) bool { return r.ImageDigest == img }},
		{"image without sha256:", core.RunFilter{ImageDigest: img[7:15]}, func(r core.Run) bool { return r.ImageDigest == img }},
		{"repo", core.RunFilter{Repo: "other"}, func(r core.Run) bool { return r.Repo == "other" }},
		{"since", core.RunFilter{Since: since}, func(r core.Run) bool { return !r.Created.Before(since) }},
		{"combined", core.RunFilter{Status: core.RunSucceeded, Repo: "default", ImageDigest: img, Limit: 5},
			func(r core.Run) bool {
				return r.Status == core.RunSucceeded && r.Repo == "default" && r.ImageDigest == img
			}},
		{"no match", core.RunFilter{Commit: "0000000"}, func(core.Run) bool { return false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for _, r := range all {
				if tc.keep(r) && (tc.f.Limit == 0 || len(want) < tc.f.Limit) {
					want = append(want, r.ID)
				}
			}
			got, err := s.Runs(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			ids := []string{}
			for _, r := range got {
				ids = append(ids, r.ID)
			}
			if want == nil {
				want = []string{}
			}
			if !reflect.DeepEqual(ids, want) {
				t.Fatalf("Runs(%+v): %d ids %.3v..., want %d ids %.3v...", tc.f, len(ids), ids, len(want), want)
			}
		})
	}
}

// TestRunsOrderTies: runs created in the same instant are ordered by id,
// and trimmed RFC 3339 fractions still order by time within a page.
func TestRunsOrderTies(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	at := sqlitetest.Base
	mk := func(id string, created time.Time) core.Run {
		r := sqlitetest.SyntheticRun(0, 0)
		r.ID, r.Created = id, created
		return r
	}
	runs := []core.Run{
		mk(strings.Repeat("1", 32), at),
		mk(strings.Repeat("2", 32), at),
		mk(strings.Repeat("3", 32), at.Add(500*time.Millisecond)), // "...00.5Z" < "...00Z" as text
		mk(strings.Repeat("0", 32), at.Add(time.Second)),
	}
	if err := sqlitetest.InsertRuns(ctx, s.DB(), runs); err != nil {
		t.Fatal(err)
	}
	got, err := s.Runs(ctx, core.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ID[:1])
	}
	if strings.Join(ids, "") != "0321" {
		t.Fatalf("order %v, want 0 3 2 1 (newest first, then id descending)", ids)
	}
	for _, tc := range []struct {
		since time.Time
		want  string
	}{{at, "0321"}, {at.Add(time.Nanosecond), "03"}, {at.Add(500 * time.Millisecond), "03"}, {at.Add(501 * time.Millisecond), "0"}} {
		got, err := s.Runs(ctx, core.RunFilter{Since: tc.since})
		if err != nil {
			t.Fatal(err)
		}
		ids = ids[:0]
		for _, r := range got {
			ids = append(ids, r.ID[:1])
		}
		if strings.Join(ids, "") != tc.want {
			t.Errorf("since %s: %v, want %s", tc.since.Format(time.RFC3339Nano), ids, tc.want)
		}
	}
}

func TestRunByLast(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.Run(ctx, "last"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Run(last) on an empty store: %v; want ErrNotFound", err)
	}
	at := sqlitetest.Base
	var runs []core.Run
	for i, id := range []string{"b", "a", "c"} {
		r := sqlitetest.SyntheticRun(i, 1)
		r.ID, r.Created = strings.Repeat(id, 32), at.Add(time.Duration(i)*time.Minute)
		runs = append(runs, r)
	}
	if err := sqlitetest.InsertRuns(ctx, s.DB(), runs); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"last": "c", "LAST~0": "c", "last~1": "a", "last~2": "b"} {
		got, err := s.Run(ctx, name)
		if err != nil {
			t.Fatalf("Run(%s): %v", name, err)
		}
		if got.ID[:1] != want || len(got.Outputs) != 1 {
			t.Errorf("Run(%s) = %s with %d outputs; want %s... with its output", name, got.ID, len(got.Outputs), want)
		}
	}
	if _, err := s.Run(ctx, "last~3"); !errors.Is(err, core.ErrNotFound) || !strings.Contains(err.Error(), "has 3 runs") {
		t.Errorf("Run(last~3): %v; want ErrNotFound saying the store has 3 runs", err)
	}
	for _, bad := range []string{"last~", "last~-1", "last~x", "lastt"} {
		if _, err := s.Run(ctx, bad); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("Run(%q): %v; want ErrInvalid", bad, err)
		}
	}
}

func TestRunsCorruptColumn(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := sqlitetest.InsertSynthetic(ctx, s.DB(), 0, 1, 0, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `UPDATE runs SET mounts = '{not json'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Runs(ctx, core.RunFilter{}); !errors.Is(err, core.ErrCorrupt) {
		t.Fatalf("Runs over a corrupt mounts column: %v, want ErrCorrupt", err)
	}
}

// Runs of one Runfile share their mounts text; each listed run still has
// its own mounts, and a corrupt args or env column is still refused.
func TestRunsOwnMounts(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := sqlitetest.InsertSynthetic(ctx, s.DB(), 0, 2, 0, true); err != nil {
		t.Fatal(err)
	}
	runs, err := s.Runs(ctx, core.RunFilter{})
	if err != nil || len(runs) != 2 || len(runs[0].Mounts) == 0 {
		t.Fatalf("Runs: %d runs, %v", len(runs), err)
	}
	src := runs[1].Mounts[0].Source
	runs[0].Mounts[0].Source = "/changed"
	if runs[1].Mounts[0].Source != src {
		t.Error("two listed runs share one mounts slice")
	}
	for col, good := range map[string]string{"args": "{}", "env": "[]"} {
		if _, err := s.DB().ExecContext(ctx, `UPDATE runs SET `+col+` = '["a",'`); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Runs(ctx, core.RunFilter{}); !errors.Is(err, core.ErrCorrupt) {
			t.Errorf("Runs over a corrupt %s column: %v, want ErrCorrupt", col, err)
		}
		s.DB().ExecContext(ctx, `UPDATE runs SET `+col+` = ?`, good)
	}
}

// TestRunRoundTripThroughWriter: what CreateRun and FinishRun store, Run
// and Runs read back unchanged.
func TestRunRoundTripThroughWriter(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	full := sqlitetest.SyntheticRun(42, 5)
	full.IndexDigest = "sha256:" + sqlitetest.Hex64("index")
	full.WeakerSandbox = true
	full.Drift = "kernel 6.1.0-1 -> 6.1.0-2"
	full.ReproduceOf = sqlitetest.RunID(41)
	full.Verdict = "reproduced bit-for-bit"
	full.Limits.Note = "pids limit not applied"
	// Manifests read back sorted by name and path.
	full.Outputs = append([]core.FileRecord{{Name: "/safe_outputs", Path: "latest", Link: "out/00004.txt"}}, full.Outputs...)
	start := full
	start.Status, start.ExitCode, start.Reason = core.RunRunning, nil, ""
	start.Ended, start.Steps, start.Inputs, start.Outputs = time.Time{}, nil, nil, nil
	if err := s.CreateRun(ctx, &start); err != nil {
		t.Fatal(err)
	}
	got, err := s.Run(ctx, full.ID[:8])
	if err != nil {
		t.Fatal(err)
	}
	if g, w := runJSON(t, *got), runJSON(t, start); g != w {
		t.Fatalf("created run read back\n%s\nwant\n%s", g, w)
	}
	if err := s.FinishRun(ctx, &full); err != nil {
		t.Fatal(err)
	}
	got, err = s.Run(ctx, full.ID[:8])
	if err != nil {
		t.Fatal(err)
	}
	if g, w := runJSON(t, *got), runJSON(t, full); g != w {
		t.Fatalf("finished run read back\n%s\nwant\n%s", g, w)
	}
	list, err := s.Runs(ctx, core.RunFilter{Commit: full.Commit})
	if err != nil || len(list) != 1 {
		t.Fatalf("Runs: %d runs, %v", len(list), err)
	}
	want := full
	want.Steps, want.Inputs, want.Outputs = nil, nil, nil
	if g, w := runJSON(t, list[0]), runJSON(t, want); g != w {
		t.Fatalf("listed run\n%s\nwant\n%s", g, w)
	}
}

// TestSyntheticBareRows: the rows the fixture generates in SQL read back as
// SyntheticRun without steps and manifests, so listings tests over 100,000
// of them check real values.
func TestSyntheticBareRows(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := sqlitetest.InsertSynthetic(ctx, s.DB(), 0, 2100, 0, true); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, 2, 7, 59, 999, 1000, 1001, 2099} {
		got, err := s.Run(ctx, sqlitetest.RunID(i))
		if err != nil {
			t.Fatal(err)
		}
		want := sqlitetest.SyntheticRun(i, 0)
		want.Steps, want.Inputs, want.Outputs = nil, nil, nil
		if g, w := runJSON(t, *got), runJSON(t, want); g != w {
			t.Fatalf("run %d read back\n%s\nwant\n%s", i, g, w)
		}
	}
}
