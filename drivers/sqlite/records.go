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
		return fn(&recordTx{s: s, q: &stmtTx{Tx: tx}, now: s.now()})
	})
}

// recordTx is the core.RecordWriter of one WriteRecords transaction.
type recordTx struct {
	s   *Store
	q   *stmtTx
	now time.Time
}

func (w *recordTx) PutEnvironment(ctx context.Context, e core.Environment) (string, error) {
	return putEnvironment(ctx, w.q, e, w.now)
}

func (w *recordTx) PutSystemKernel(ctx context.Context, k *core.SystemKernel) (string, error) {
	return putSystemKernel(ctx, w.q, k, w.now)
}

func (w *recordTx) LastSystemKernel(ctx context.Context, commit, exceptRun string) (*core.SystemKernel, error) {
	return lastSystemKernel(ctx, w.q, commit, exceptRun)
}

func (w *recordTx) FinishRun(ctx context.Context, r *core.Run) error {
	if err := checkRun(r); err != nil {
		return err
	}
	return w.s.finishRun(ctx, w.q, r)
}

// txQuerier is what the run writers need of a transaction: a *sql.Tx or a
// stmtTx.
type txQuerier interface {
	querier
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// stmtTx is a transaction that prepares each statement text once and keeps
// it until the transaction ends: SQLite parses a statement in about the
// time it takes to run it, and a batch of records runs the same dozen
// statements for each. PrepareContext is the transaction's own (its caller
// closes the statement).
type stmtTx struct {
	*sql.Tx
	stmts map[string]*sql.Stmt
}

func (t *stmtTx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := t.stmts[query]; ok {
		return st, nil
	}
	st, err := t.Tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[query] = st
	return st, nil
}

func (t *stmtTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (t *stmtTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (t *stmtTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return t.Tx.QueryRowContext(ctx, query, args...) // a Row that carries the error
	}
	return st.QueryRowContext(ctx, args...)
}
