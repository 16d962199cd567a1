package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/runprov/runprov/core"
)

// UpdateUnfinishedRun applies u (empty fields keep what is stored) only
// while the run is still queued or running, so that it never overwrites the
// record a job wrote (FinishRun) between the scheduler's answer and this
// call. It reports whether it changed the row. Used by plugins/slurm.
func (s *Store) UpdateUnfinishedRun(ctx context.Context, u core.RunUpdate) (bool, error) {
	n, err := s.UpdateUnfinishedRuns(ctx, []core.RunUpdate{u})
	return n == 1, err
}

// UpdateUnfinishedRuns is UpdateUnfinishedRun of each of us, all in one
// transaction (the runs of an array job): all are applied or none. It
// returns how many rows it changed.
func (s *Store) UpdateUnfinishedRuns(ctx context.Context, us []core.RunUpdate) (int, error) {
	for _, u := range us {
		if !u.Status.Finished() && u.Status != core.RunRunning && u.Status != core.RunQueued {
			return 0, fmt.Errorf("update run %s: %w: status %q", u.ID, core.ErrInvalid, u.Status)
		}
	}
	var changed int
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		changed = 0 // a retried transaction starts over
		q := &stmtTx{Tx: tx}
		for _, u := range us {
			ok, err := s.updateUnfinishedRun(ctx, q, u)
			if err != nil {
				return err
			}
			if ok {
				changed++
			}
		}
		return nil
	})
	return changed, err
}

func (s *Store) updateUnfinishedRun(ctx context.Context, q querier, u core.RunUpdate) (bool, error) {
	set := []string{"status = ?"}
	args := []any{string(u.Status)}
	for _, c := range []struct {
		col, val string
	}{
		{"slurm_job_id", u.JobID}, {"slurm_node", u.Node}, {"slurm_partition", u.Partition}, {"reason", u.Reason},
		{"started_at", zeroText(u.Started)}, {"ended_at", zeroText(u.Ended)},
	} {
		if c.val != "" {
			set = append(set, c.col+" = ?")
			args = append(args, c.val)
		}
	}
	if u.ArrayTask != nil {
		set = append(set, "slurm_array_task = ?")
		args = append(args, *u.ArrayTask)
	}
	res, err := q.ExecContext(ctx, `UPDATE runs SET `+strings.Join(set, ", ")+` WHERE id = ? AND status IN ('queued', 'running')`,
		append(args, u.ID)...)
	if err != nil {
		return false, fmt.Errorf("update run %s: %w", u.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	return true, s.chainFinishedRun(ctx, q, u.ID, u.Status)
}
