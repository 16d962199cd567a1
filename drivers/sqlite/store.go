package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"os/user"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
	"modernc.org/sqlite"

	"github.com/runprov/runprov/core"
)

// DefaultBusyTimeout is how long a writer waits for another process's write
// transaction before giving up with core.ErrBusy.
const DefaultBusyTimeout = 60 * time.Second

// Options tune Open and Init. The zero value is right for the CLI.
type Options struct {
	BusyTimeout time.Duration
	Logger      *slog.Logger
	// ReadOnly opens the database read-only and never migrates it: for a
	// store this process cannot write (see ReadOnly).
	ReadOnly bool
	// migrateTo stops migrations at this version (tests build old stores).
	migrateTo int
}

// Store is the middleware of one store directory.
type Store struct {
	db     *sql.DB
	layout core.Layout
	log    *slog.Logger
	now    func() time.Time
	// readOnly: opened with Options.ReadOnly; immutable: and the directory
	// cannot take the -wal and -shm files, so SQLite must not look for them.
	readOnly, immutable bool
}

// Init creates the store directory and its database (or upgrades an existing
// one) and returns it open. settings are written only when the database is new.
func Init(ctx context.Context, dir string, settings map[string]string, opts Options) (*Store, bool, error) {
	layout := core.Layout{Root: dir}
	if ReadOnly(dir) {
		return nil, false, fmt.Errorf("init %s: %w: this user cannot upgrade or change it (a read-only mount, or no write permission)", dir, core.ErrStoreReadOnly)
	}
	for _, d := range []string{dir, layout.Images(), layout.RootfsDir(), layout.RunsDir(), layout.Tmp(), layout.Volume("")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, false, fmt.Errorf("create store: %w", err)
		}
	}
	_, err := os.Stat(layout.DB())
	created := errors.Is(err, os.ErrNotExist)
	s, err := open(ctx, layout, opts)
	if err != nil {
		return nil, false, err
	}
	if created {
		for _, k := range slices.Sorted(maps.Keys(settings)) {
			if err := s.setSetting(ctx, k, settings[k], "runprov init"); err != nil {
				s.Close()
				return nil, false, err
			}
		}
	}
	return s, created, nil
}

// Open opens an existing store and upgrades its schema. A directory without
// a database gives an error wrapping core.ErrNoStore.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	layout := core.Layout{Root: dir}
	if _, err := os.Stat(layout.DB()); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", dir, core.ErrNoStore)
		}
		return nil, fmt.Errorf("open store: %w", err)
	}
	return open(ctx, layout, opts)
}

// ReadOnly reports whether dir holds a store database that this process
// cannot write: the directory or the database is on a read-only mount or
// lacks write permission for this user.
func ReadOnly(dir string) bool {
	db := core.Layout{Root: dir}.DB()
	if _, err := os.Stat(db); err != nil {
		return false
	}
	return !writable(dir) || !writable(db)
}

// writable asks the kernel, which knows about read-only mounts and root.
func writable(path string) bool { return unix.Access(path, unix.W_OK) == nil }

func open(ctx context.Context, layout core.Layout, opts Options) (*Store, error) {
	if opts.BusyTimeout == 0 {
		opts.BusyTimeout = DefaultBusyTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{layout: layout, log: opts.Logger, now: time.Now, readOnly: opts.ReadOnly}
	if opts.ReadOnly {
		s.immutable = !writable(layout.Root)
		if err := s.openReadOnly(ctx); err != nil {
			return nil, err
		}
		return s, nil
	}
	db, err := sql.Open("sqlite", dsn(layout.DB(), opts.BusyTimeout, false))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", layout.DB(), err)
	}
	s.db = db
	if err := migrate(ctx, db, opts.migrateTo); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", layout.DB(), err)
	}
	return s, nil
}

// openReadOnly opens the database of a store this process cannot write. A
// schema older than this build cannot be migrated here: its owner must.
func (s *Store) openReadOnly(ctx context.Context) error {
	db, err := sql.Open("sqlite", s.readDSN())
	if err != nil {
		return fmt.Errorf("open %s: %w", s.layout.DB(), err)
	}
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		db.Close()
		return fmt.Errorf("open %s read-only: %w", s.layout.DB(), mapErr(err))
	}
	if fi, err := os.Stat(s.layout.DB() + "-wal"); s.immutable && err == nil && fi.Size() > 0 {
		// immutable=1 ignores the WAL: its changes were never copied into
		// the database, since a writer did not close cleanly.
		s.log.Warn("the store's write-ahead log was not checkpointed; changes kept in it are not shown", "wal", s.layout.DB()+"-wal")
	}
	switch want := SchemaVersion(); {
	case v > want:
		db.Close()
		return fmt.Errorf("open %s: store schema version %d is newer than this runprov (%d): upgrade runprov", s.layout.DB(), v, want)
	case v < want:
		db.Close()
		return fmt.Errorf("open %s: %w: its schema version %d is older than this runprov's (%d) and a read-only store cannot be upgraded: its owner must run: runprov init --store %s",
			s.layout.DB(), core.ErrStoreReadOnly, v, want, s.layout.Root)
	}
	s.db = db
	return nil
}

// readDSN is the connection string of read-only connections.
func (s *Store) readDSN() string {
	d := dsn(s.layout.DB(), DefaultBusyTimeout, true)
	if s.immutable {
		d += "&immutable=1"
	}
	return d
}

// ReadOnly reports whether the store was opened read-only.
func (s *Store) ReadOnly() bool { return s.readOnly }

// dsn builds the connection string: WAL so readers never block the writer,
// a busy timeout so writers queue instead of failing, foreign keys on, and
// BEGIN IMMEDIATE for every transaction so a read never has to be upgraded to
// a write (which SQLite would refuse with SQLITE_BUSY at once).
func dsn(path string, busy time.Duration, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if readOnly {
		q.Set("mode", "ro")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Layout returns the store's directory layout.
func (s *Store) Layout() core.Layout { return s.layout }

// DB returns the database handle, for drivers that keep tables in this store.
func (s *Store) DB() *sql.DB { return s.db }

// SchemaVersion returns the schema version of the open store.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

// Setting returns the value of a store setting and whether it is set.
func (s *Store) Setting(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := s.db.QueryRowContext(ctx, "SELECT value FROM settings WHERE key = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, mapErr(err)
	}
	return v, true, nil
}

// SetSetting sets a store setting and records the change in config_events
// (who, when, the old and new value); setting the value it has changes and
// records nothing.
func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	return s.setSetting(ctx, key, value, "")
}

func (s *Store) setSetting(ctx context.Context, key, value, note string) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		var old sql.NullString
		err := tx.QueryRowContext(ctx, "SELECT value FROM settings WHERE key = ?", key).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if old.Valid && old.String == value {
			return nil
		}
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO settings(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, value); err != nil {
			return fmt.Errorf("set %s: %w", key, err)
		}
		name, uid := whoami()
		res, err := tx.ExecContext(ctx, `INSERT INTO config_events(key, old_value, new_value, at, user, uid, note) VALUES(?, ?, ?, ?, ?, ?, ?)`,
			key, old, value, timeText(s.now()), name, uid, note)
		if err != nil {
			return fmt.Errorf("record the change of %s: %w", key, err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("record the change of %s: %w", key, err)
		}
		return appendChain(ctx, tx, chainKey{chainConfigEvent, strconv.FormatInt(id, 10)}, s.now())
	})
}

// whoami names the user running runprov, for config_events.
func whoami() (string, int) {
	uid := os.Getuid()
	if u, err := user.Current(); err == nil {
		return u.Username, uid
	}
	return fmt.Sprintf("uid %d", uid), uid
}

// ConfigEvents returns the changes of key ("" = every setting), oldest first.
func (s *Store) ConfigEvents(ctx context.Context, key string) ([]core.ConfigEvent, error) {
	q := `SELECT id, key, old_value, new_value, at, user, uid, note FROM config_events`
	var args []any
	if key != "" {
		q += ` WHERE key = ?`
		args = append(args, key)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []core.ConfigEvent
	for rows.Next() {
		var (
			e   core.ConfigEvent
			old sql.NullString
			at  string
		)
		if err := rows.Scan(&e.ID, &e.Key, &old, &e.New, &at, &e.User, &e.UID, &e.Note); err != nil {
			return nil, err
		}
		if old.Valid {
			e.Old = &old.String
		}
		e.At = parseTime(at)
		out = append(out, e)
	}
	return out, mapErr(rows.Err())
}

// Settings returns every store setting.
func (s *Store) Settings(ctx context.Context) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT key, value FROM settings ORDER BY key")
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

// writeTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it,
// or rolls it back if fn or the commit fails.
func (s *Store) writeTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return mapErr(err)
	}
	return mapErr(tx.Commit())
}

// WriteTx exposes writeTx to the other drivers' tables kept in this store.
func (s *Store) WriteTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.writeTx(ctx, fn)
}

// mapErr turns SQLite's busy and locked errors into core.ErrBusy.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return fmt.Errorf("%w: another runprov process held the store's write lock too long; try again (%v)", core.ErrBusy, err)
		case 8: // SQLITE_READONLY
			return fmt.Errorf("%w (%v)", core.ErrStoreReadOnly, err)
		}
	}
	return err
}

// storedTime is how times are kept: RFC 3339 in UTC with all nine digits of
// nanoseconds, so that text order is time order (RFC3339Nano trims zeros,
// and "05Z" would sort after "05.5Z").
const storedTime = "2006-01-02T15:04:05.000000000Z07:00"

func timeText(t time.Time) string { return t.UTC().Format(storedTime) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
