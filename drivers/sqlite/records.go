package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/runprov/runprov/core"
)

var _ core.RecordWriter = (*recordTx)(nil)

// WriteRecords calls fn with a writer whose writes all go into one write
// transaction: committed when fn returns nil, rolled back (nothing stored)
// when it returns an error or the commit fails. Storing many finished runs
// this way costs one transaction instead of one each (plugins/slurm's
// ingest of job records). The writer must not be used after fn returns.
func (s *Store) WriteRecords(ctx context.Context, fn func(w core.RecordWriter) error) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		return fn(&recordTx{s: s, tx: tx, now: s.now()})
	})
}

// recordTx is the core.RecordWriter of one WriteRecords transaction.
type recordTx struct {
	s   *Store
	tx  *sql.Tx
	now time.Time
}

func (w *recordTx) PutEnvironment(ctx context.Context, e core.Environment) (string, error) {
	return putEnvironment(ctx, w.tx, e, w.now)
}

func (w *recordTx) PutSystemKernel(ctx context.Context, k *core.SystemKernel) (string, error) {
	return putSystemKernel(ctx, w.tx, k, w.now)
}

func (w *recordTx) LastSystemKernel(ctx context.Context, commit, exceptRun string) (*core.SystemKernel, error) {
	return lastSystemKernel(ctx, w.tx, commit, exceptRun)
}

func (w *recordTx) FinishRun(ctx context.Context, r *core.Run) error {
	if err := checkRun(r); err != nil {
		return err
	}
	return w.s.finishRun(ctx, w.tx, r)
}
