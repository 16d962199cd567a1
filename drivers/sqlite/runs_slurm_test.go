package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/sqlite/sqlitetest"
)

// UpdateUnfinishedRun moves an unfinished run on, and never touches one
// whose record was stored in between.
func TestUpdateUnfinishedRun(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	r := sqlitetest.SyntheticRun(1, 0)
	r.Executor, r.Status, r.ExitCode, r.Reason = "slurm", core.RunQueued, nil, ""
	r.Started, r.Ended, r.Steps, r.Inputs = time.Time{}, time.Time{}, nil, nil
	r.Slurm = &core.SlurmJob{}
	if err := s.CreateRun(ctx, &r); err != nil {
		t.Fatal(err)
	}
	task := 4
	started := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	changed, err := s.UpdateUnfinishedRun(ctx, core.RunUpdate{ID: r.ID, Status: core.RunRunning, JobID: "77", ArrayTask: &task, Node: "n1", Partition: "debug", Started: started})
	if err != nil || !changed {
		t.Fatalf("update queued run: %v, %v", changed, err)
	}
	got, err := s.Run(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != core.RunRunning || got.Slurm == nil || got.Slurm.JobID != "77" || got.Slurm.ArrayTask == nil || *got.Slurm.ArrayTask != 4 ||
		got.Slurm.Node != "n1" || got.Slurm.Partition != "debug" || !got.Started.Equal(started) || got.Reason != "" {
		t.Fatalf("after update: %s %+v started %v reason %q", got.Status, got.Slurm, got.Started, got.Reason)
	}
	// Empty fields keep what is stored.
	if _, err := s.UpdateUnfinishedRun(ctx, core.RunUpdate{ID: r.ID, Status: core.RunRunning}); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Run(ctx, r.ID); again.Slurm.Node != "n1" || !again.Started.Equal(started) {
		t.Fatalf("an empty update changed the run: %+v %v", again.Slurm, again.Started)
	}
	fin := *got
	zero := 0
	fin.Status, fin.ExitCode, fin.Ended = core.RunSucceeded, &zero, started.Add(time.Second)
	if err := s.FinishRun(ctx, &fin); err != nil {
		t.Fatal(err)
	}
	changed, err = s.UpdateUnfinishedRun(ctx, core.RunUpdate{ID: r.ID, Status: core.RunAborted, Reason: "lost", Ended: time.Now()})
	if err != nil || changed {
		t.Fatalf("update of a finished run: %v, %v; want unchanged", changed, err)
	}
	if after, _ := s.Run(ctx, r.ID); after.Status != core.RunSucceeded || after.Reason != "" {
		t.Fatalf("finished run overwritten: %s %q", after.Status, after.Reason)
	}
	if _, err := s.UpdateUnfinishedRun(ctx, core.RunUpdate{ID: r.ID, Status: "bogus"}); err == nil {
		t.Fatal("a bogus status was accepted")
	}
}

// UpdateUnfinishedRuns applies a batch in one transaction: unfinished runs
// move on, a finished one is left alone, and an aborted run joins the chain.
func TestUpdateUnfinishedRuns(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var ids []string
	for i := range 3 {
		r := sqlitetest.SyntheticRun(i, 0)
		r.Executor, r.Status, r.ExitCode, r.Reason = "slurm", core.RunQueued, nil, ""
		r.Started, r.Ended, r.Steps, r.Inputs = time.Time{}, time.Time{}, nil, nil
		if i == 2 {
			zero := 0
			r.Status, r.ExitCode, r.Ended = core.RunSucceeded, &zero, r.Created.Add(time.Second)
		}
		if err := s.CreateRun(ctx, &r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	us := []core.RunUpdate{
		{ID: ids[0], Status: core.RunQueued, JobID: "88"},
		{ID: ids[1], Status: core.RunAborted, Reason: "cancelled", Ended: time.Now()},
		{ID: ids[2], Status: core.RunQueued, JobID: "88"},
	}
	if n, err := s.UpdateUnfinishedRuns(ctx, us); n != 2 || err != nil {
		t.Fatalf("UpdateUnfinishedRuns: %d, %v; want 2", n, err)
	}
	for i, want := range []core.RunStatus{core.RunQueued, core.RunAborted, core.RunSucceeded} {
		got, err := s.Run(ctx, ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != want || (i == 0 && (got.Slurm == nil || got.Slurm.JobID != "88")) || (i == 2 && got.Slurm != nil) {
			t.Errorf("run %d: %s %+v, want %s", i, got.Status, got.Slurm, want)
		}
	}
	if ps := chainProblems(t, s); len(ps) > 0 {
		t.Errorf("chain: %+v", ps)
	}
	if _, err := s.UpdateUnfinishedRuns(ctx, append(us, core.RunUpdate{ID: ids[0], Status: "bogus"})); err == nil {
		t.Error("a batch with a bogus status was accepted")
	}
}
