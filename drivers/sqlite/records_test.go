package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/sqlite/sqlitetest"
)

// TestWriteRecords: runs finished through one WriteRecords transaction are
// stored whole and chained (the chain checks clean), a later write in the
// transaction sees the earlier ones, and a transaction whose function fails
// stores nothing.
func TestWriteRecords(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var final []core.Run
	for i := range 6 {
		r := sqlitetest.SyntheticRun(i, 3)
		if i > 0 {
			r.Commit = final[0].Commit
		}
		final = append(final, r)
		q := r
		q.Status, q.ExitCode, q.Started, q.Ended, q.Steps, q.Inputs, q.Outputs = core.RunQueued, nil, time.Time{}, time.Time{}, nil, nil, nil
		if err := s.CreateRun(ctx, &q); err != nil {
			t.Fatal(err)
		}
	}
	kernel := &core.SystemKernel{KernelRelease: "6.1", Arch: "x86_64", CPUCount: 2}
	write := func(runs []core.Run, fail error) error {
		return s.WriteRecords(ctx, func(w core.RecordWriter) error {
			for i := range runs {
				r := runs[i]
				if _, err := w.LastSystemKernel(ctx, r.Commit, r.ID); i > 0 && err != nil {
					return err // the previous run's snapshot, stored in this transaction
				}
				env, err := w.PutEnvironment(ctx, core.Environment{User: "root", Hostname: "node1"})
				if err != nil {
					return err
				}
				ksha, err := w.PutSystemKernel(ctx, kernel)
				if err != nil {
					return err
				}
				r.EnvironmentSHA256, r.SystemKernelSHA256 = env, ksha
				if err := w.FinishRun(ctx, &r); err != nil {
					return err
				}
			}
			return fail
		})
	}
	refused := errors.New("refused")
	if err := write(final[:3], refused); !errors.Is(err, refused) {
		t.Fatalf("WriteRecords with a failing function: %v", err)
	}
	for _, r := range final[:3] {
		if got, _ := s.Run(ctx, r.ID); got.Status != core.RunQueued {
			t.Errorf("run %s of a rolled back batch is %s", r.ID, got.Status)
		}
	}
	var chained int
	s.DB().QueryRow("SELECT count(*) FROM chain WHERE kind = 'run'").Scan(&chained)
	if chained != 0 {
		t.Errorf("a rolled back batch left %d chain entries", chained)
	}
	if err := write(final, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range final {
		got, err := s.Run(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.SystemKernelSHA256 == "" || got.EnvironmentSHA256 == "" {
			t.Errorf("run %s has no snapshots", r.ID)
		}
		got.EnvironmentSHA256, got.SystemKernelSHA256 = "", ""
		if runJSON(t, *got) != runJSON(t, r) {
			t.Errorf("run %s reads back as\n%s\nwant\n%s", r.ID, runJSON(t, *got), runJSON(t, r))
		}
	}
	if ps := chainProblems(t, s); len(ps) > 0 {
		t.Errorf("chain check after a batch: %+v", ps)
	}
	missing := final[0]
	missing.ID = sqlitetest.RunID(99)
	if err := write([]core.Run{missing}, nil); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("a batch finishing an unknown run: %v, want ErrNotFound", err)
	}
}
