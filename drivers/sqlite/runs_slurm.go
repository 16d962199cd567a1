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
	if !u.Status.Finished() && u.Status != core.RunRunning && u.Status != core.RunQueued {
		return false, fmt.Errorf("update run %s: %w: status %q", u.ID, core.ErrInvalid, u.Status)
	}
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
	var changed bool
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE runs SET `+strings.Join(set, ", ")+` WHERE id = ? AND status IN ('queued', 'running')`,
			append(args, u.ID)...)
		if err != nil {
			return fmt.Errorf("update run %s: %w", u.ID, err)
		}
		n, err := res.RowsAffected()
		changed = n > 0
		if err != nil || !changed {
			return err
		}
		return s.chainFinishedRun(ctx, tx, u.ID, u.Status)
	})
	return changed, err
}
