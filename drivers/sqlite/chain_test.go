package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/sqlite/sqlitetest"
)

func chainedRuns(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.DB().Query(`SELECT kind || ' ' || key FROM chain WHERE kind = 'run' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		rows.Scan(&k)
		out = append(out, k)
	}
	return out
}

func chainProblems(t *testing.T, s *Store) []core.Problem {
	t.Helper()
	var ps []core.Problem
	if err := (ChainChecker{Store: s}).Check(context.Background(), func(p core.Problem) { ps = append(ps, p) }); err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestChainRunLifecycle: a run joins the chain when its status becomes
// final, by whichever writer makes it so, and joins again when stored
// again; the chain holds throughout.
func TestChainRunLifecycle(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	var ids []string
	for i := range 4 {
		r := sqlitetest.SyntheticRun(i, 1)
		r.Status, r.ExitCode, r.Ended = core.RunRunning, nil, time.Time{}
		if i == 3 {
			r.Status = core.RunQueued
		}
		if err := s.CreateRun(ctx, &r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	if got := chainedRuns(t, s); len(got) != 0 {
		t.Fatalf("unfinished runs chained: %v", got)
	}
	done := sqlitetest.SyntheticRun(0, 2)
	if err := s.FinishRun(ctx, &done); err != nil {
		t.Fatal(err)
	}
	s.DB().Exec("UPDATE runs SET owner_pid = 999999 WHERE id = ?", ids[1])
	if _, err := s.AbortStaleRuns(ctx, func(pid int, _, _ string) bool { return pid != 999999 }, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateUnfinishedRun(ctx, core.RunUpdate{ID: ids[3], Status: core.RunFailed, Reason: "job cancelled"}); err != nil {
		t.Fatal(err)
	}
	// A record ingested after the scheduler's verdict replaces the row.
	late := sqlitetest.SyntheticRun(3, 1)
	if err := s.FinishRun(ctx, &late); err != nil {
		t.Fatal(err)
	}
	want := []string{"run " + ids[0], "run " + ids[1], "run " + ids[3], "run " + ids[3]}
	if got := chainedRuns(t, s); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Fatalf("chain %v, want %v", got, want)
	}
	if ps := chainProblems(t, s); len(ps) != 0 {
		t.Fatalf("problems: %v", ps)
	}
}
