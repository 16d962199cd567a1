package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/runprov/runprov/core"
)

// The environments and system_kernels tables (migration 0001) are content
// addressed: a row's key is the sha256 of its record, so runs on one
// unchanged host share one row and Put is idempotent.

// PutEnvironment stores e once and returns its SHA256, the key runs refer
// to (runs.environment_sha256).
func (s *Store) PutEnvironment(ctx context.Context, e core.Environment) (string, error) {
	return putEnvironment(ctx, s.db, e, s.now())
}

func putEnvironment(ctx context.Context, q querier, e core.Environment, now time.Time) (string, error) {
	sha := e.SHA256()
	groups := slices.Sorted(slices.Values(e.Groups))
	if groups == nil {
		groups = []int{}
	}
	gj, err := json.Marshal(groups)
	if err != nil {
		return "", err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO environments(sha256, uid, gid, user, groups, hostname, first_seen)
		VALUES(?, ?, ?, ?, ?, ?, ?) ON CONFLICT(sha256) DO NOTHING`,
		sha, e.UID, e.GID, e.User, string(gj), e.Hostname, timeText(now))
	if err != nil {
		return "", fmt.Errorf("store environment %s: %w", sha, mapErr(err))
	}
	return sha, nil
}

// Environment returns the environment stored under sha: an error wrapping
// core.ErrNotFound when there is none, core.ErrCorrupt when the row no
// longer hashes to its key.
func (s *Store) Environment(ctx context.Context, sha string) (*core.Environment, error) {
	var (
		e  core.Environment
		gj string
	)
	err := s.db.QueryRowContext(ctx, `SELECT uid, gid, user, groups, hostname FROM environments WHERE sha256 = ?`, sha).
		Scan(&e.UID, &e.GID, &e.User, &gj, &e.Hostname)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("environment %s: %w", sha, core.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read environment %s: %w", sha, mapErr(err))
	}
	if err := json.Unmarshal([]byte(gj), &e.Groups); err != nil {
		return nil, fmt.Errorf("environment %s: groups %q: %w: %v", sha, gj, core.ErrCorrupt, err)
	}
	if got := e.SHA256(); got != sha {
		return nil, &core.DigestMismatchError{What: "environment row", Want: sha, Got: got}
	}
	return &e, nil
}

// PutSystemKernel stores the snapshot k once: its key columns for queries
// and the full canonical JSON in snapshot. It returns k's SHA256, the key
// runs refer to (runs.system_kernel_sha256).
func (s *Store) PutSystemKernel(ctx context.Context, k *core.SystemKernel) (string, error) {
	return putSystemKernel(ctx, s.db, k, s.now())
}

func putSystemKernel(ctx context.Context, q querier, k *core.SystemKernel, now time.Time) (string, error) {
	snap := k.CanonicalJSON()
	sha := snapshotSHA256(snap)
	_, err := q.ExecContext(ctx, `INSERT INTO system_kernels(sha256, kernel_release, kernel_version, os_release,
			arch, cpu_model, cpu_count, mem_total_bytes, runtime_name, runtime_version, snapshot, first_seen)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(sha256) DO NOTHING`,
		sha, k.KernelRelease, k.KernelVersion, k.OSRelease, k.Arch, k.CPUModel, k.CPUCount, k.MemTotalBytes,
		k.Runtime.Name, k.Runtime.Version, string(snap), timeText(now))
	if err != nil {
		return "", fmt.Errorf("store system kernel snapshot %s: %w", sha, mapErr(err))
	}
	return sha, nil
}

// SystemKernel returns the snapshot stored under sha: an error wrapping
// core.ErrNotFound when there is none, core.ErrCorrupt when the stored JSON
// no longer hashes to its key.
func (s *Store) SystemKernel(ctx context.Context, sha string) (*core.SystemKernel, error) {
	return systemKernel(ctx, s.db, sha)
}

func systemKernel(ctx context.Context, q querier, sha string) (*core.SystemKernel, error) {
	var snap string
	err := q.QueryRowContext(ctx, `SELECT snapshot FROM system_kernels WHERE sha256 = ?`, sha).Scan(&snap)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("system kernel snapshot %s: %w", sha, core.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read system kernel snapshot %s: %w", sha, mapErr(err))
	}
	if got := snapshotSHA256([]byte(snap)); got != sha {
		return nil, &core.DigestMismatchError{What: "system kernel snapshot", Want: sha, Got: got}
	}
	var k core.SystemKernel
	if err := json.Unmarshal([]byte(snap), &k); err != nil {
		return nil, fmt.Errorf("system kernel snapshot %s: %w: %v", sha, core.ErrCorrupt, err)
	}
	return &k, nil
}

// LastSystemKernel returns the snapshot of the newest run of commit other
// than exceptRun (the run being started), for the drift check before a run.
// It returns an error wrapping core.ErrNotFound when the commit has no
// earlier run with a snapshot.
func (s *Store) LastSystemKernel(ctx context.Context, commit, exceptRun string) (*core.SystemKernel, error) {
	return lastSystemKernel(ctx, s.db, commit, exceptRun)
}

func lastSystemKernel(ctx context.Context, q querier, commit, exceptRun string) (*core.SystemKernel, error) {
	var sha string
	err := q.QueryRowContext(ctx, `SELECT system_kernel_sha256 FROM runs
		WHERE commit_hash = ? AND id != ? AND system_kernel_sha256 != ''
		ORDER BY created_at DESC, rowid DESC LIMIT 1`, commit, exceptRun).Scan(&sha)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("earlier run of commit %s: %w", commit, core.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("find the last run of commit %s: %w", commit, mapErr(err))
	}
	return systemKernel(ctx, q, sha)
}

func snapshotSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
