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
