package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Migrations are migrations/NNNN_name.sql, applied in order, each in its own
// transaction; PRAGMA user_version holds the number of the last one applied.
// Never edit a migration that has shipped: add a new one.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrationSteps are Go steps that run after a migration's SQL, in its
// transaction, for work SQL cannot do (sha256).
var migrationSteps = map[int]func(ctx context.Context, q querier, now time.Time) error{
	7: buildChain, // 0007_chain.sql
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		body, err := fs.ReadFile(migrationFS, "migrations/"+e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migrations: version %d missing (found %d)", i+1, m.version)
		}
	}
	return ms, nil
}

// SchemaVersion is the schema version this build writes.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrate applies migrations after the store's current version, up to limit
// (0: all). It refuses a store newer than this build.
func migrate(ctx context.Context, db *sql.DB, limit int) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	if limit > 0 && limit < len(ms) {
		ms = ms[:limit]
	}
	var cur int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&cur); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if cur > len(ms) && limit == 0 {
		return fmt.Errorf("store schema version %d is newer than this runprov (%d): upgrade runprov", cur, len(ms))
	}
	for _, m := range ms[min(cur, len(ms)):] {
		if err := applyMigration(ctx, db, m); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, m migration) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// BEGIN IMMEDIATE so two processes opening an old store do not both
	// migrate it: the second waits, then sees the new version and skips.
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("migration %d: %w", m.version, mapErr(err))
	}
	var cur int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&cur); err != nil {
		conn.ExecContext(ctx, "ROLLBACK")
		return err
	}
	if cur >= m.version {
		_, err := conn.ExecContext(ctx, "ROLLBACK")
		return err
	}
	if _, err := conn.ExecContext(ctx, m.sql); err != nil {
		conn.ExecContext(context.Background(), "ROLLBACK")
		return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
	}
	if step := migrationSteps[m.version]; step != nil {
		if err := step(ctx, conn, time.Now()); err != nil {
			conn.ExecContext(context.Background(), "ROLLBACK")
			return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version)); err != nil {
		conn.ExecContext(context.Background(), "ROLLBACK")
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		conn.ExecContext(context.Background(), "ROLLBACK")
		return fmt.Errorf("migration %d: %w", m.version, mapErr(err))
	}
	return nil
}
