package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/sqlite/sqlitetest"
)

// TestCreateFinishRun: a run is created running, finished with its steps
// and manifests, read back equal; FinishRun is idempotent and replaces.
func TestCreateFinishRun(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	r := sqlitetest.SyntheticRun(7, 2)
	final := r
	r.Status, r.ExitCode, r.Ended, r.Inputs, r.Outputs = core.RunRunning, nil, time.Time{}, nil, nil
	r.Steps = []core.RunStep{{Index: 0, Argv: []string{"/bin/true"}, ExitCode: -1}}
	if err := s.CreateRun(ctx, &r); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRun(ctx, &r); !errors.Is(err, core.ErrExists) {
		t.Errorf("second CreateRun: %v, want ErrExists", err)
	}
	got, err := s.Run(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if runJSON(t, *got) != runJSON(t, r) {
		t.Errorf("created run reads back as\n%s\nwant\n%s", runJSON(t, *got), runJSON(t, r))
	}
	var pid int
	s.DB().QueryRow("SELECT owner_pid FROM runs WHERE id = ?", r.ID).Scan(&pid)
	if pid == 0 {
		t.Errorf("a running run has no owner pid")
	}
	for range 2 {
		if err := s.FinishRun(ctx, &final); err != nil {
			t.Fatal(err)
		}
	}
	got, err = s.Run(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if runJSON(t, *got) != runJSON(t, final) {
		t.Errorf("finished run reads back as\n%s\nwant\n%s", runJSON(t, *got), runJSON(t, final))
	}
	missing := final
	missing.ID = sqlitetest.RunID(99)
	if err := s.FinishRun(ctx, &missing); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("FinishRun of an unknown run: %v", err)
	}
}

func TestAbortStaleRuns(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var ids []string
	for i := range 3 {
		r := sqlitetest.SyntheticRun(i, 0)
		r.Status, r.ExitCode, r.Ended = core.RunRunning, nil, time.Time{}
		if i == 2 {
			r.Status = core.RunQueued // no owner: left alone
		}
		if err := s.CreateRun(ctx, &r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	// Run 0 belongs to a dead process, run 1 to a live one.
	s.DB().Exec("UPDATE runs SET owner_pid = 999999 WHERE id = ?", ids[0])
	got, err := s.AbortStaleRuns(ctx, func(pid int, host, start string) bool { return pid != 999999 }, nil)
	if err != nil || len(got) != 1 || got[0] != ids[0] {
		t.Fatalf("AbortStaleRuns: %v, %v; want [%s]", got, err, ids[0])
	}
	for i, want := range []core.RunStatus{core.RunAborted, core.RunRunning, core.RunQueued} {
		r, err := s.Run(ctx, ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != want || (want == core.RunAborted && (r.Reason == "" || r.Ended.IsZero())) {
			t.Errorf("run %d: %s %q ended %v, want %s", i, r.Status, r.Reason, r.Ended, want)
		}
	}
	if got, _ := s.AbortStaleRuns(ctx, func(int, string, string) bool { return false }, nil); len(got) != 1 || got[0] != ids[1] {
		t.Errorf("second pass marked %v, want [%s] (run 1 only)", got, ids[1])
	}
	id, sha, err := s.LastRunSnapshot(ctx, "nope", "")
	if err != nil || id != "" || sha != "" {
		t.Errorf("LastRunSnapshot of an unknown commit: %q %q %v", id, sha, err)
	}
}
