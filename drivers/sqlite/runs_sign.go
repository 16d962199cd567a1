package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/runprov/runprov/core"
)

// PutRunSignature stores the signature of run sig.RunID, replacing any
// earlier one (a record signed again after it was taken in).
func (s *Store) PutRunSignature(ctx context.Context, sig *core.RunSignature) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO run_signatures(run_id, key_id, key_kind, signed_at, envelope) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(run_id) DO UPDATE SET key_id = excluded.key_id, key_kind = excluded.key_kind,
			signed_at = excluded.signed_at, envelope = excluded.envelope`,
		sig.RunID, sig.KeyID, sig.KeyKind, timeText(sig.SignedAt), string(sig.Envelope))
	if err != nil {
		return fmt.Errorf("store the signature of run %s: %w", core.ShortRunID(sig.RunID), mapErr(err))
	}
	return nil
}

// RunSignature returns the signature of the run with id runID, or an error
// wrapping core.ErrNotFound when the run is not signed.
func (s *Store) RunSignature(ctx context.Context, runID string) (*core.RunSignature, error) {
	sig := &core.RunSignature{RunID: runID}
	var at, env string
	err := s.db.QueryRowContext(ctx, `SELECT key_id, key_kind, signed_at, envelope FROM run_signatures WHERE run_id = ?`, runID).
		Scan(&sig.KeyID, &sig.KeyKind, &at, &env)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("run %s: %w: it is not signed", core.ShortRunID(runID), core.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read the signature of run %s: %w", core.ShortRunID(runID), mapErr(err))
	}
	sig.SignedAt, sig.Envelope = parseTime(at), []byte(env)
	return sig, nil
}
