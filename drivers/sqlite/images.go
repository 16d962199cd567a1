package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/runprov/runprov/core"
)

const imageColumns = `digest, media_type, ref, source, platform, config_digest, index_digest, size,
	imported_at, approved, approval_note, approved_by, approved_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanImage(r rowScanner) (core.ImageRecord, error) {
	var (
		rec                core.ImageRecord
		imported, approved string
	)
	err := r.Scan(&rec.Digest, &rec.MediaType, &rec.Ref, &rec.Source, &rec.Platform, &rec.ConfigDigest, &rec.IndexDigest,
		&rec.Size, &imported, &rec.Approved, &rec.ApprovalNote, &rec.ApprovedBy, &approved)
	rec.ImportedAt = parseTime(imported)
	if approved != "" {
		rec.ApprovedAt = parseTime(approved)
	}
	return rec, err
}

// PutImageRecords is for drivers/image (Records).
func (s *Store) PutImageRecords(ctx context.Context, recs []core.ImageRecord, ev core.ImageEvent) error {
	now := s.now()
	if ev.At.IsZero() {
		ev.At = now
	}
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		for _, r := range recs {
			at := r.ImportedAt
			if at.IsZero() {
				at = now
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO images(digest, media_type, ref, source, platform, config_digest, index_digest, size, imported_at)
				VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT(digest) DO UPDATE SET
					ref = CASE WHEN images.ref = '' THEN excluded.ref ELSE images.ref END,
					index_digest = CASE WHEN images.index_digest = '' THEN excluded.index_digest ELSE images.index_digest END`,
				r.Digest, r.MediaType, r.Ref, r.Source, r.Platform, r.ConfigDigest, r.IndexDigest, r.Size, timeText(at))
			if err != nil {
				return fmt.Errorf("store image %s: %w", r.Digest, err)
			}
			e := ev
			e.Digest = r.Digest
			if err := insertImageEvent(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

func insertImageEvent(ctx context.Context, tx *sql.Tx, e core.ImageEvent) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO image_events(digest, event, at, user, uid, note) VALUES(?, ?, ?, ?, ?, ?)`,
		e.Digest, e.Event, timeText(e.At), e.User, e.UID, e.Note)
	if err != nil {
		return fmt.Errorf("record image event %s %s: %w", e.Event, e.Digest, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("record image event %s %s: %w", e.Event, e.Digest, err)
	}
	return appendChain(ctx, tx, chainKey{chainImageEvent, strconv.FormatInt(id, 10)}, time.Now())
}

// ImageRecord is for drivers/image (Records).
func (s *Store) ImageRecord(ctx context.Context, digest string) (*core.ImageRecord, error) {
	rec, err := scanImage(s.db.QueryRowContext(ctx, `SELECT `+imageColumns+` FROM images WHERE digest = ?`, digest))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("image %s: %w", digest, core.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load image %s: %w", digest, mapErr(err))
	}
	return &rec, nil
}

// ImageRecords is for drivers/image (Records).
func (s *Store) ImageRecords(ctx context.Context) ([]core.ImageRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+imageColumns+` FROM images ORDER BY imported_at, digest`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []core.ImageRecord
	for rows.Next() {
		rec, err := scanImage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, mapErr(rows.Err())
}

// ImageDigests is for drivers/image (Records).
func (s *Store) ImageDigests(ctx context.Context, prefix string, limit int) ([]string, error) {
	prefix = strings.ToLower(prefix)
	rows, err := s.db.QueryContext(ctx, `SELECT digest FROM images WHERE digest >= ? AND digest < ? ORDER BY digest LIMIT ?`,
		prefix, prefix+"\xff", limit)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, mapErr(rows.Err())
}

// SetImageApproval is for drivers/image (Records).
func (s *Store) SetImageApproval(ctx context.Context, digest string, approved bool, ev core.ImageEvent) error {
	if ev.At.IsZero() {
		ev.At = s.now()
	}
	ev.Digest = digest
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := setApproved(ctx, tx, digest, approved, ev)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("image %s: %w", digest, core.ErrNotFound)
		}
		return insertImageEvent(ctx, tx, ev)
	})
}

// setApproved sets the approved flag of image digest and who set it, why
// and when (ev).
func setApproved(ctx context.Context, tx *sql.Tx, digest string, approved bool, ev core.ImageEvent) (sql.Result, error) {
	at := ""
	if approved {
		at = timeText(ev.At)
	}
	res, err := tx.ExecContext(ctx, `UPDATE images SET approved = ?, approval_note = ?, approved_by = ?, approved_at = ? WHERE digest = ?`,
		approved, ev.Note, ev.User, at, digest)
	if err != nil {
		return nil, fmt.Errorf("set approval of %s: %w", digest, err)
	}
	return res, nil
}

// RemoveImageRecords is for drivers/image (Records).
func (s *Store) RemoveImageRecords(ctx context.Context, digests []string, ev core.ImageEvent) error {
	if ev.At.IsZero() {
		ev.At = s.now()
	}
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		for _, d := range digests {
			if _, err := tx.ExecContext(ctx, `DELETE FROM images WHERE digest = ?`, d); err != nil {
				return fmt.Errorf("remove image %s: %w", d, err)
			}
			e := ev
			e.Digest = d
			if err := insertImageEvent(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// ImageEvents is for drivers/image (Records).
func (s *Store) ImageEvents(ctx context.Context, digest string) ([]core.ImageEvent, error) {
	q := `SELECT id, digest, event, at, user, uid, note FROM image_events`
	var args []any
	if digest != "" {
		q += ` WHERE digest = ?`
		args = append(args, digest)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []core.ImageEvent
	for rows.Next() {
		var (
			e  core.ImageEvent
			at string
		)
		if err := rows.Scan(&e.ID, &e.Digest, &e.Event, &at, &e.User, &e.UID, &e.Note); err != nil {
			return nil, err
		}
		e.At = parseTime(at)
		out = append(out, e)
	}
	return out, mapErr(rows.Err())
}
