package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, created, err := Init(context.Background(), t.TempDir(), map[string]string{"require-approval": "false"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatal("Init of an empty dir did not create a store")
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenMissingStore(t *testing.T) {
	_, err := Open(context.Background(), t.TempDir(), Options{})
	if !errors.Is(err, core.ErrNoStore) {
		t.Fatalf("Open of an empty dir: got %v, want ErrNoStore", err)
	}
}

func TestPragmas(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var mode string
	var fk, busy int
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || fk != 1 || busy != int(DefaultBusyTimeout.Milliseconds()) {
		t.Fatalf("journal_mode=%s foreign_keys=%d busy_timeout=%d; want wal, 1, %d", mode, fk, busy, DefaultBusyTimeout.Milliseconds())
	}
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != SchemaVersion() {
		t.Fatalf("schema version %d (%v), want %d", v, err, SchemaVersion())
	}
}

// TestUpgradeFromVersion1 builds a store at schema version 1, fills it, and
// checks that opening it with this build upgrades it and keeps the rows.
func TestUpgradeFromVersion1(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old, _, err := Init(ctx, dir, nil, Options{migrateTo: 1})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := old.SchemaVersion(ctx); v != 1 {
		t.Fatalf("old store has version %d, want 1", v)
	}
	if err := old.UpdateRepo(ctx, "default", func(context.Context, *core.RepoArtifact) (*core.RepoUpdate, error) {
		return &core.RepoUpdate{Tarball: []byte("tar"), Head: "abc", Commits: []core.Commit{{Hash: "abc", Path: "Runfile", Time: time.Unix(1, 0)}}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	old.Close()

	s, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _ := s.SchemaVersion(ctx); v != SchemaVersion() {
		t.Fatalf("upgraded store has version %d, want %d", v, SchemaVersion())
	}
	rows, err := s.Commits(ctx, core.CommitFilter{})
	if err != nil || len(rows) != 1 || rows[0].Hash != "abc" {
		t.Fatalf("after upgrade: commits %v, %v", rows, err)
	}
}

func TestRefuseNewerStore(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if _, err := s.db.ExecContext(ctx, "PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, s.layout.Root, Options{})
	if err == nil || !strings.Contains(err.Error(), "newer than this runprov") {
		t.Fatalf("opening a store from the future: %v", err)
	}
}

func TestUpdateRepoRollsBackOnError(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	boom := errors.New("boom")
	err := s.UpdateRepo(ctx, "r", func(context.Context, *core.RepoArtifact) (*core.RepoUpdate, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	// A duplicate commit row makes the insert fail after the repo row was
	// written: the whole transaction must go.
	c := core.Commit{Hash: "h", Path: "p"}
	err = s.UpdateRepo(ctx, "r", func(context.Context, *core.RepoArtifact) (*core.RepoUpdate, error) {
		return &core.RepoUpdate{Tarball: []byte("x"), Commits: []core.Commit{c, c}}, nil
	})
	if err == nil {
		t.Fatal("duplicate commit rows were accepted")
	}
	if _, err := s.Repo(ctx, "r"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("repo exists after a failed update: %v", err)
	}
}

// TestBusyIsRetryable holds the write lock in one connection and checks that
// a second writer with a short timeout gets core.ErrBusy.
func TestBusyIsRetryable(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	other, err := Open(ctx, s.layout.Root, Options{BusyTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	release := make(chan struct{})
	held := make(chan struct{})
	done := make(chan error)
	go func() {
		done <- s.UpdateRepo(ctx, "a", func(context.Context, *core.RepoArtifact) (*core.RepoUpdate, error) {
			close(held)
			<-release
			return nil, nil
		})
	}()
	<-held
	err = other.SetSetting(ctx, "k", "v")
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !errors.Is(err, core.ErrBusy) {
		t.Fatalf("writer blocked past its timeout got %v, want ErrBusy", err)
	}
}

type collect struct {
	cols []string
	rows [][]any
}

func (c *collect) Header(cols []string) error { c.cols = cols; return nil }
func (c *collect) Row(v []any) error          { c.rows = append(c.rows, append([]any(nil), v...)); return nil }

func TestQueryIsReadOnly(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if err := s.SetSetting(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	var c collect
	if err := s.Query(ctx, "SELECT key, value FROM settings WHERE key = 'k'", &c); err != nil {
		t.Fatal(err)
	}
	if len(c.rows) != 1 || c.rows[0][1] != "v" {
		t.Fatalf("select: %v", c.rows)
	}
	if err := s.Query(ctx, "PRAGMA table_info(commits)", &collect{}); err != nil {
		t.Fatalf("read-only pragma refused: %v", err)
	}
	attach := filepath.Join(t.TempDir(), "new.db")
	for _, q := range []string{
		"DELETE FROM settings",
		"UPDATE settings SET value = 'x'",
		"INSERT INTO settings VALUES ('a', 'b')",
		"DROP TABLE settings",
		"CREATE TABLE t(x)",
		"PRAGMA user_version = 7",
		"PRAGMA journal_mode = DELETE",
		"ATTACH DATABASE '" + attach + "' AS x",
		"BEGIN",
		"SELECT 1; DELETE FROM settings",
		"WITH x AS (SELECT 1) DELETE FROM settings",
		"VACUUM",
		"REINDEX",
	} {
		err := s.Query(ctx, q, &collect{})
		if err == nil {
			t.Errorf("%q was accepted", q)
		}
	}
	if _, err := os.Stat(attach); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ATTACH created %s", attach)
	}
	if v, ok, _ := s.Setting(ctx, "k"); !ok || v != "v" {
		t.Fatalf("settings changed by refused statements: %q %v", v, ok)
	}
	if err := s.Query(ctx, "DELETE FROM settings", &collect{}); !errors.Is(err, core.ErrReadOnly) {
		t.Errorf("DELETE: got %v, want ErrReadOnly", err)
	}
}

// TestConfigEventsUpgrade: upgrading a store from before config_events
// records each existing setting once, by an unknown user; later changes
// are recorded with their old value.
func TestConfigEventsUpgrade(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old, _, err := Init(ctx, dir, nil, Options{migrateTo: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.db.ExecContext(ctx, "INSERT INTO settings(key, value) VALUES(?, 'true')", core.SettingRequireApproval); err != nil {
		t.Fatal(err)
	}
	old.Close()
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetSetting(ctx, core.SettingRequireApproval, "false"); err != nil {
		t.Fatal(err)
	}
	evs, err := s.ConfigEvents(ctx, core.SettingRequireApproval)
	if err != nil || len(evs) != 2 {
		t.Fatalf("config events after upgrade: %+v, %v", evs, err)
	}
	if e := evs[0]; e.Old != nil || e.New != "true" || e.UID != -1 || e.At.IsZero() {
		t.Errorf("setting carried over by the migration: %+v", e)
	}
	if e := evs[1]; e.Old == nil || *e.Old != "true" || e.New != "false" || e.UID != os.Getuid() {
		t.Errorf("change after upgrade: %+v", e)
	}
}
