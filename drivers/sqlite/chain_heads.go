package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/runprov/runprov/core"
)

// ChainHead returns the newest chain entry; Seq is 0 for an empty chain.
func (s *Store) ChainHead(ctx context.Context) (core.ChainHead, error) {
	var h core.ChainHead
	err := s.db.QueryRowContext(ctx, `SELECT seq, sha256 FROM chain ORDER BY seq DESC LIMIT 1`).Scan(&h.Seq, &h.SHA256)
	if errors.Is(err, sql.ErrNoRows) {
		return core.ChainHead{}, nil
	}
	return h, mapErr(err)
}

// PutSignedHead keeps a signed head. It returns an error wrapping
// core.ErrUnverified when the chain does not hold h.ChainHead.
func (s *Store) PutSignedHead(ctx context.Context, h core.SignedHead) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		var sum string
		err := tx.QueryRowContext(ctx, `SELECT sha256 FROM chain WHERE seq = ?`, h.Seq).Scan(&sum)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && sum != h.SHA256) {
			return fmt.Errorf("chain head %d: %w: the chain does not hold it", h.Seq, core.ErrUnverified)
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO chain_heads(seq, sha256, key_id, envelope, signed_at) VALUES(?, ?, ?, ?, ?)
			ON CONFLICT(seq) DO UPDATE SET sha256 = excluded.sha256, key_id = excluded.key_id,
				envelope = excluded.envelope, signed_at = excluded.signed_at`,
			h.Seq, h.SHA256, h.KeyID, string(h.Envelope), timeText(h.SignedAt))
		if err != nil {
			return fmt.Errorf("store signed head %d: %w", h.Seq, err)
		}
		return nil
	})
}

// SignedHeads returns the signed heads, oldest first.
func (s *Store) SignedHeads(ctx context.Context) ([]core.SignedHead, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, sha256, key_id, envelope, signed_at FROM chain_heads ORDER BY seq`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []core.SignedHead
	for rows.Next() {
		var (
			h       core.SignedHead
			env, at string
		)
		if err := rows.Scan(&h.Seq, &h.SHA256, &h.KeyID, &env, &at); err != nil {
			return nil, err
		}
		h.Envelope, h.SignedAt = []byte(env), parseTime(at)
		out = append(out, h)
	}
	return out, mapErr(rows.Err())
}

// checkSignedHeads reports each signed head the chain no longer holds: the
// chain was rewritten or cut back after it was signed. The signatures
// themselves are checked by whoever holds the key (runprov fsck).
func checkSignedHeads(ctx context.Context, q querier, entries []chainEntry, report func(core.Problem)) error {
	rows, err := q.QueryContext(ctx, `SELECT seq, sha256 FROM chain_heads ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("read signed heads: %w", mapErr(err))
	}
	defer rows.Close()
	bySeq := make(map[int64]string, len(entries))
	for _, e := range entries {
		bySeq[e.seq] = e.sum
	}
	for rows.Next() {
		var h core.ChainHead
		if err := rows.Scan(&h.Seq, &h.SHA256); err != nil {
			return fmt.Errorf("read signed heads: %w", err)
		}
		switch sum, ok := bySeq[h.Seq]; {
		case !ok:
			report(core.Problem{Where: fmt.Sprintf("signed head %d", h.Seq), What: "the chain has no such entry any more (cut back after it was signed)"})
		case sum != h.SHA256:
			report(core.Problem{Where: fmt.Sprintf("signed head %d", h.Seq), What: "the chain's entry differs from the signed head (the chain was rewritten after it was signed)"})
		}
	}
	return mapErr(rows.Err())
}
