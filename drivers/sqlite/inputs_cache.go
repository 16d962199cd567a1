package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/runprov/runprov/core"
)

var _ core.InputCache = (*Store)(nil)

// underRoot is the WHERE clause selecting path root itself and every path
// below it: a range on the primary key ('0' follows '/').
const underRoot = `(path = ? OR (path > ? AND path < ?))`

func underRootArgs(root string) []any {
	dir := strings.TrimSuffix(root, "/")
	return []any{root, dir + "/", dir + "0"}
}

// InputFingerprints implements core.InputCache.
func (s *Store) InputFingerprints(ctx context.Context, roots []string) (map[string]core.InputFingerprint, error) {
	out := map[string]core.InputFingerprint{}
	for _, root := range roots {
		rows, err := s.db.QueryContext(ctx, `SELECT path, dev, ino, size, mtime_ns, ctime_ns, sha256, hashed_at
			FROM input_fingerprints WHERE `+underRoot, underRootArgs(root)...)
		if err != nil {
			return nil, fmt.Errorf("read the input cache: %w", mapErr(err))
		}
		for rows.Next() {
			var (
				p, at    string
				dev, ino int64
				fp       core.InputFingerprint
			)
			if err := rows.Scan(&p, &dev, &ino, &fp.Size, &fp.MtimeNS, &fp.CtimeNS, &fp.SHA256, &at); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read the input cache: %w", err)
			}
			fp.Dev, fp.Ino, fp.HashedAt = uint64(dev), uint64(ino), parseTime(at)
			out[p] = fp
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read the input cache: %w", mapErr(err))
		}
	}
	return out, nil
}

// PutInputFingerprints implements core.InputCache, in one transaction.
func (s *Store) PutInputFingerprints(ctx context.Context, roots []string, fps map[string]core.InputFingerprint) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		for _, root := range roots {
			if _, err := tx.ExecContext(ctx, `DELETE FROM input_fingerprints WHERE `+underRoot, underRootArgs(root)...); err != nil {
				return fmt.Errorf("update the input cache: %w", err)
			}
		}
		st, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO input_fingerprints(path, dev, ino, size, mtime_ns, ctime_ns, sha256, hashed_at)
			VALUES(?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("update the input cache: %w", err)
		}
		defer st.Close()
		for p, fp := range fps {
			if _, err := st.ExecContext(ctx, p, int64(fp.Dev), int64(fp.Ino), fp.Size, fp.MtimeNS, fp.CtimeNS, fp.SHA256, timeText(fp.HashedAt)); err != nil {
				return fmt.Errorf("update the input cache: %w", err)
			}
		}
		return nil
	})
}
