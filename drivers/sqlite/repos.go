package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/runprov/runprov/core"
)

// UpdateRepo is for plugins/consumer (RepoStore). fn runs inside the write transaction,
// so concurrent updates of any repo in this store are serialised.
func (s *Store) UpdateRepo(ctx context.Context, name string, fn func(context.Context, *core.RepoArtifact) (*core.RepoUpdate, error)) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		cur, id, err := loadRepo(ctx, tx, name)
		if err != nil && !errors.Is(err, core.ErrNotFound) {
			return err
		}
		up, err := fn(ctx, cur)
		if err != nil || up == nil {
			return err
		}
		sum := sha256.Sum256(up.Tarball)
		now := timeText(s.now())
		if cur == nil {
			res, err := tx.ExecContext(ctx, `INSERT INTO repos(name, branch, head, container_run_commands, tarball_sha256, tarball_size, created_at, updated_at)
				VALUES(?, ?, ?, ?, ?, ?, ?, ?)`, name, core.DefaultBranch, up.Head, up.Tarball, hex.EncodeToString(sum[:]), len(up.Tarball), now, now)
			if err != nil {
				return fmt.Errorf("insert repo %q: %w", name, err)
			}
			if id, err = res.LastInsertId(); err != nil {
				return err
			}
		} else {
			_, err := tx.ExecContext(ctx, `UPDATE repos SET head = ?, container_run_commands = ?, tarball_sha256 = ?, tarball_size = ?, updated_at = ? WHERE id = ?`,
				up.Head, up.Tarball, hex.EncodeToString(sum[:]), len(up.Tarball), now, id)
			if err != nil {
				return fmt.Errorf("update repo %q: %w", name, err)
			}
		}
		var seq int64
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM commits").Scan(&seq); err != nil {
			return err
		}
		insert := `INSERT INTO commits(repo_id, hash, path, blob, image_ref, image_digest, message, author, committed_at, seq)
			VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
		if up.Reorder {
			insert += " ON CONFLICT(repo_id, hash, path) DO UPDATE SET seq = excluded.seq"
		}
		if len(up.Commits) == 0 {
			return nil
		}
		// Prepared once: a pull indexes up to thousands of rows.
		st, err := tx.PrepareContext(ctx, insert)
		if err != nil {
			return fmt.Errorf("index commits: %w", err)
		}
		defer st.Close()
		for _, c := range up.Commits {
			seq++
			_, err := st.ExecContext(ctx, id, c.Hash, c.Path, c.Blob, c.ImageRef, c.ImageDigest, c.Message, c.Author, timeText(c.Time), seq)
			if err != nil {
				return fmt.Errorf("index commit %s %s: %w", c.Hash, c.Path, err)
			}
		}
		return nil
	})
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func loadRepo(ctx context.Context, q queryer, name string) (*core.RepoArtifact, int64, error) {
	var (
		r       core.RepoArtifact
		id      int64
		updated string
	)
	err := q.QueryRowContext(ctx, `SELECT id, name, branch, head, container_run_commands, tarball_sha256, tarball_size, updated_at
		FROM repos WHERE name = ?`, name).Scan(&id, &r.Name, &r.Branch, &r.Head, &r.Tarball, &r.SHA256, &r.Size, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, fmt.Errorf("repo %q: %w", name, core.ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("load repo %q: %w", name, mapErr(err))
	}
	r.UpdatedAt = parseTime(updated)
	return &r, id, nil
}

// Repo is for plugins/consumer (RepoStore).
func (s *Store) Repo(ctx context.Context, name string) (*core.RepoArtifact, error) {
	r, _, err := loadRepo(ctx, s.db, name)
	return r, err
}

// Repos is for plugins/consumer (RepoStore).
func (s *Store) Repos(ctx context.Context) ([]core.RepoArtifact, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, branch, head, tarball_sha256, tarball_size, updated_at FROM repos ORDER BY name`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []core.RepoArtifact
	for rows.Next() {
		var (
			r       core.RepoArtifact
			updated string
		)
		if err := rows.Scan(&r.Name, &r.Branch, &r.Head, &r.SHA256, &r.Size, &updated); err != nil {
			return nil, err
		}
		r.UpdatedAt = parseTime(updated)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Commits is for plugins/consumer (RepoStore).
func (s *Store) Commits(ctx context.Context, f core.CommitFilter) ([]core.Commit, error) {
	var (
		where []string
		args  []any
	)
	if f.Repo != "" {
		where = append(where, "r.name = ?")
		args = append(args, f.Repo)
	}
	if f.Path != "" {
		where = append(where, "c.path = ?")
		args = append(args, f.Path)
	}
	if f.Prefix != "" {
		// A range scan on the hash index: prefix <= hash < prefix + max char.
		where = append(where, "c.hash >= ? AND c.hash < ?")
		args = append(args, strings.ToLower(f.Prefix), strings.ToLower(f.Prefix)+"\xff")
	}
	from := "commits c"
	if f.Path != "" && f.Limit > 0 && f.Prefix == "" {
		// The latest rows at a path: walking the seq index from the newest
		// stops at the first match, where the planner's choice (every row
		// of the repo, then a sort) grows with the history and made the
		// 1000th add slower than the 10th.
		from = "commits c INDEXED BY commits_seq"
	}
	q := `SELECT r.name, c.hash, c.path, c.blob, c.image_ref, c.image_digest, c.message, c.author, c.committed_at
		FROM ` + from + ` JOIN repos r ON r.id = c.repo_id`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY c.seq DESC"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []core.Commit
	for rows.Next() {
		var (
			c  core.Commit
			at string
		)
		if err := rows.Scan(&c.Repo, &c.Hash, &c.Path, &c.Blob, &c.ImageRef, &c.ImageDigest, &c.Message, &c.Author, &at); err != nil {
			return nil, err
		}
		c.Time = parseTime(at)
		out = append(out, c)
	}
	return out, rows.Err()
}
