package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"

	"github.com/runprov/runprov/core"
)

// PutSignedApproval stores a signed approval or revocation envelope of
// digest, read by the caller (key id, time), with its image event ev (which
// joins the hash chain), in one transaction. Storing an envelope twice is
// not an error. The image's approved flag follows it, so that listings
// say what the newest approval said.
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
		if _, err := setApproved(ctx, tx, digest, kind == core.ImageEventApprove, ev); err != nil {
			return err
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

// checkSignedApprovals names each stored approval envelope that is not
// what was stored: its bytes no longer hash to its sha256, or no chained
// image event names that sha256 (the row was inserted without runprov).
func (s *Store) checkSignedApprovals(ctx context.Context, report func(core.Problem)) error {
	rows, err := s.db.QueryContext(ctx, `SELECT a.id, a.digest, a.sha256, a.envelope,
		EXISTS (SELECT 1 FROM image_events e WHERE e.digest = a.digest AND e.event = a.kind AND instr(e.note, 'envelope sha256:' || a.sha256) > 0)
		FROM image_approvals a ORDER BY a.id`)
	if err != nil {
		return fmt.Errorf("check signed approvals: %w", mapErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id          int64
			digest, sum string
			envelope    []byte
			hasEvent    bool
		)
		if err := rows.Scan(&id, &digest, &sum, &envelope, &hasEvent); err != nil {
			return fmt.Errorf("check signed approvals: %w", err)
		}
		where := fmt.Sprintf("signed approval %d of %s", id, digest)
		if got := sha256.Sum256(envelope); hex.EncodeToString(got[:]) != sum {
			report(core.Problem{Where: where, What: "its envelope was edited (it no longer hashes to sha256:" + sum + ")"})
		}
		if !hasEvent {
			report(core.Problem{Where: where, What: "no image event names it (inserted without runprov)"})
		}
	}
	return rows.Err()
}
