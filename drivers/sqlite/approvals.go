package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/runprov/runprov/core"
)

// PutSignedApproval stores a signed approval or revocation envelope of
// digest, read by the caller (key id, time), with its image event ev (which
// joins the hash chain), in one transaction. Storing an envelope twice is
// not an error.
func (s *Store) PutSignedApproval(ctx context.Context, digest, kind, keyID, sum string, envelope []byte, ev core.ImageEvent) error {
	if ev.At.IsZero() {
		ev.At = s.now()
	}
	ev.Digest = digest
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO image_approvals(digest, kind, key_id, sha256, envelope, at) VALUES(?, ?, ?, ?, ?, ?)`,
			digest, kind, keyID, sum, envelope, timeText(ev.At))
		if err != nil {
			return fmt.Errorf("store signed approval of %s: %w", digest, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		return insertImageEvent(ctx, tx, ev)
	})
}

// SignedApprovalEnvelopes returns the stored envelopes whose subject is one
// of digests, oldest first.
func (s *Store) SignedApprovalEnvelopes(ctx context.Context, digests ...string) ([][]byte, error) {
	var out [][]byte
	for _, d := range digests {
		rows, err := s.db.QueryContext(ctx, `SELECT envelope FROM image_approvals WHERE digest = ? ORDER BY id`, d)
		if err != nil {
			return nil, fmt.Errorf("read signed approvals of %s: %w", d, err)
		}
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, b)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RunApproval returns the signed approval run id relied on ("", "" if none).
func (s *Store) RunApproval(ctx context.Context, id string) (keyID, sum string, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT key_id, sha256 FROM run_approvals WHERE run_id = ?`, id).Scan(&keyID, &sum)
	if err == sql.ErrNoRows {
		return "", "", nil
	}
	return keyID, sum, err
}
