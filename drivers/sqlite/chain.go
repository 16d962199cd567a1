package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/runprov/runprov/core"
)

// The hash chain (table chain, migration 0007): every finished run, image
// event and config event joins it in the transaction that writes it. A run
// joins when it reaches a final status; while queued or running it is not
// in the chain (its row still changes). A run stored again after it
// finished (a Slurm record ingested after the scheduler's verdict) joins
// again: the newest entry of a key is the one its row must match.

// Chain entry kinds.
const (
	chainRun         = "run"
	chainImageEvent  = "image_event"
	chainConfigEvent = "config_event"
	chainRunEvent    = "run_event" // a note or tag of a run (migration 0012)
)

// The columns of each canonical form, in their order there. Fixed lists,
// not SELECT *: a column added by a later migration must not change the
// hash of rows chained before it.
var (
	runChainColumns = splitColumns(`id, repo, path, commit_hash, runfile_blob, image_ref, image_digest, index_digest,
		config_digest, approved, args, env, labels, argv, user, workdir, mounts, limits, runtime, runtime_version,
		weaker_sandbox, executor, slurm_job_id, slurm_array_task, slurm_node, slurm_partition, hostname,
		environment_sha256, system_kernel_sha256, drift, status, exit_code, reason, created_at, started_at, ended_at,
		reproduce_of, verdict, owner_pid, owner_host, owner_start`)
	stepChainColumns        = []string{"idx", "argv", "exit_code", "started_at", "ended_at"}
	fileChainColumns        = []string{"kind", "name", "path", "size", "sha256", "link"}
	imageEventChainColumns  = []string{"id", "digest", "event", "at", "user", "uid", "note"}
	configEventChainColumns = []string{"id", "key", "old_value", "new_value", "at", "user", "uid", "note"}
	runEventChainColumns    = []string{"id", "run_id", "action", "value", "at", "user", "uid"}
)

// querier is what chain code needs of a *sql.Tx or a *sql.Conn.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// chainKey names the row an entry stands for.
type chainKey struct{ kind, key string }

func (k chainKey) String() string {
	switch k.kind {
	case chainRun:
		return "run " + k.key
	case chainImageEvent:
		return "image event " + k.key
	case chainConfigEvent:
		return "config event " + k.key
	case chainRunEvent:
		return "run note or tag event " + k.key
	}
	return k.kind + " " + k.key
}

// chainEntry is one row of table chain.
type chainEntry struct {
	seq int64
	chainKey
	entry     string // sha256 of the canonical form
	prev      string // sha256 of entry seq-1
	sum       string // sha256 of this entry
	chainedAt string
	migrated  bool
}

// linkHash is the sha256 of every field of e but sum, one per line.
func (e *chainEntry) linkHash() string {
	m := 0
	if e.migrated {
		m = 1
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%d\n%s\n%s\n%s\n%s\n%s\n%d", e.seq, e.kind, e.key, e.entry, e.prev, e.chainedAt, m))
	return hex.EncodeToString(h[:])
}

// appendChain adds k's row, as it is now in q's transaction, to the chain.
func appendChain(ctx context.Context, q querier, k chainKey, now time.Time) error {
	canon, err := canonicalOne(ctx, q, k)
	if err != nil {
		return fmt.Errorf("chain %s: %w", k, err)
	}
	sum := sha256.Sum256(canon)
	e := chainEntry{chainKey: k, entry: hex.EncodeToString(sum[:]), chainedAt: timeText(now)}
	err = q.QueryRowContext(ctx, `SELECT seq, sha256 FROM chain ORDER BY seq DESC LIMIT 1`).Scan(&e.seq, &e.prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read chain head: %w", err)
	}
	e.seq++
	return insertChainEntry(ctx, q, &e)
}

func insertChainEntry(ctx context.Context, q querier, e *chainEntry) error {
	e.sum = e.linkHash()
	_, err := q.ExecContext(ctx, `INSERT INTO chain(seq, kind, key, entry_sha256, prev_sha256, sha256, chained_at, migrated)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?)`, e.seq, e.kind, e.key, e.entry, e.prev, e.sum, e.chainedAt, e.migrated)
	if err != nil {
		return fmt.Errorf("chain %s: %w", e.chainKey, err)
	}
	return nil
}

// canonicalOne is the canonical form of one row (and a run's steps and
// files); an error wraps sql.ErrNoRows when the row does not exist.
func canonicalOne(ctx context.Context, q querier, k chainKey) ([]byte, error) {
	table, cols := chainTable(k.kind)
	row := newRowBuf(len(cols))
	err := q.QueryRowContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+table+` WHERE id = ?`, k.key).Scan(row.ptrs...)
	if err != nil {
		return nil, err
	}
	b := appendCanonicalHead(nil, k.kind, cols, row.vals)
	if k.kind != chainRun {
		return append(b, '}'), nil
	}
	for _, c := range []struct {
		name, table, order string
		cols               []string
	}{{"steps", "run_steps", "idx", stepChainColumns}, {"files", "run_files", "kind, name, path", fileChainColumns}} {
		rows, err := q.QueryContext(ctx, `SELECT run_id, `+strings.Join(c.cols, ", ")+` FROM `+c.table+` WHERE run_id = ? ORDER BY `+c.order, k.key)
		if err != nil {
			return nil, err
		}
		cur := newChildCursor(rows, c.cols)
		b = cur.appendFor(append(b, `,"`+c.name+`":`...), k.key)
		rows.Close()
		if cur.err != nil {
			return nil, cur.err
		}
	}
	return append(b, '}'), nil
}

func chainTable(kind string) (string, []string) {
	switch kind {
	case chainRun:
		return "runs", runChainColumns
	case chainImageEvent:
		return "image_events", imageEventChainColumns
	case chainRunEvent:
		return "run_events", runEventChainColumns
	default:
		return "config_events", configEventChainColumns
	}
}

// The canonical form of a row is JSON with no spaces:
// {"kind":KIND,"row":{COLUMN:VALUE,...}} and, for a run,
// {"kind":"run","row":{...},"steps":[{...},...],"files":[{...},...]}: the
// columns in the order of the lists above, steps by idx, files by kind,
// name, path. INTEGER values are JSON numbers, TEXT strings (escaping only
// '"', '\' and bytes below 0x20, as \u00XX), NULL null, REAL numbers in Go's
// shortest 'g' form, BLOB {"blob":HEX}.
func appendCanonicalHead(b []byte, kind string, cols []string, vals []any) []byte {
	b = append(b, `{"kind":`...)
	b = appendJSONString(b, kind)
	b = append(b, `,"row":`...)
	return appendObject(b, cols, vals)
}

func appendObject(b []byte, cols []string, vals []any) []byte {
	b = append(b, '{')
	for i, c := range cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, c)
		b = append(b, ':')
		b = appendValue(b, vals[i])
	}
	return append(b, '}')
}

func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case float64:
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	case string:
		return appendJSONString(b, v)
	case []byte:
		b = append(b, `{"blob":"`...)
		b = hex.AppendEncode(b, v)
		return append(b, `"}`...)
	case bool:
		return strconv.AppendBool(b, v)
	case time.Time:
		return appendJSONString(b, timeText(v))
	}
	return appendJSONString(b, fmt.Sprint(v))
}

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		if c < 0x20 {
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		} else {
			b = append(b, '\\', c)
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// rowBuf scans a row of any column types.
type rowBuf struct{ vals, ptrs []any }

func newRowBuf(n int) rowBuf {
	r := rowBuf{vals: make([]any, n), ptrs: make([]any, n)}
	for i := range r.vals {
		r.ptrs[i] = &r.vals[i]
	}
	return r
}

// childCursor walks run_steps or run_files rows ordered by run_id, so that
// every run's children are read in one pass next to the runs.
type childCursor struct {
	rows  *sql.Rows
	cols  []string
	runID string
	row   rowBuf
	ptrs  []any
	ok    bool
	err   error
}

func newChildCursor(rows *sql.Rows, cols []string) *childCursor {
	c := &childCursor{rows: rows, cols: cols, row: newRowBuf(len(cols))}
	c.ptrs = append([]any{&c.runID}, c.row.ptrs...)
	c.next()
	return c
}

func (c *childCursor) next() {
	c.ok = c.err == nil && c.rows.Next()
	if !c.ok {
		if c.err == nil {
			c.err = c.rows.Err()
		}
		return
	}
	if err := c.rows.Scan(c.ptrs...); err != nil {
		c.ok, c.err = false, err
	}
}

// appendFor appends the JSON array of the children of run id. Children of
// runs before id (in id order) have no run: Store.Check reports those.
func (c *childCursor) appendFor(b []byte, id string) []byte {
	for c.ok && c.runID < id {
		c.next()
	}
	b = append(b, '[')
	for first := true; c.ok && c.runID == id; first = false {
		if !first {
			b = append(b, ',')
		}
		b = appendObject(b, c.cols, c.row.vals)
		c.next()
	}
	return append(b, ']')
}

// rowDigest is the sha256 of a row's canonical form as the row is now.
type rowDigest struct {
	sum      string
	at       string // time order for chaining at migration
	finished bool   // a run with a final status; events always
}

// rowDigests reads every run, image event and config event and hashes
// their canonical forms, in one pass per table. q must be one connection
// (or transaction): the three run queries are read side by side.
func rowDigests(ctx context.Context, q querier) (map[chainKey]rowDigest, error) {
	out := map[chainKey]rowDigest{}
	if err := runDigests(ctx, q, out); err != nil {
		return nil, err
	}
	if err := allEventDigests(ctx, q, out); err != nil {
		return nil, err
	}
	return out, nil
}

// allEventDigests is eventDigests of every event kind; run events only once
// their table exists (the chain is first built by migration 0007).
func allEventDigests(ctx context.Context, q querier, out map[chainKey]rowDigest) error {
	kinds := []string{chainImageEvent, chainConfigEvent}
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'run_events'`).Scan(&n); err != nil {
		return fmt.Errorf("read schema: %w", err)
	}
	if n > 0 {
		kinds = append(kinds, chainRunEvent)
	}
	for _, kind := range kinds {
		if err := eventDigests(ctx, q, kind, out); err != nil {
			return err
		}
	}
	return nil
}

func runDigests(ctx context.Context, q querier, out map[chainKey]rowDigest) error {
	steps, err := q.QueryContext(ctx, `SELECT run_id, `+strings.Join(stepChainColumns, ", ")+` FROM run_steps ORDER BY run_id, idx`)
	if err != nil {
		return fmt.Errorf("read run steps: %w", err)
	}
	defer steps.Close()
	files, err := q.QueryContext(ctx, `SELECT run_id, `+strings.Join(fileChainColumns, ", ")+` FROM run_files ORDER BY run_id, kind, name, path`)
	if err != nil {
		return fmt.Errorf("read run files: %w", err)
	}
	defer files.Close()
	runs, err := q.QueryContext(ctx, `SELECT `+strings.Join(runChainColumns, ", ")+` FROM runs ORDER BY id`)
	if err != nil {
		return fmt.Errorf("read runs: %w", err)
	}
	defer runs.Close()
	sc, fc := newChildCursor(steps, stepChainColumns), newChildCursor(files, fileChainColumns)
	row := newRowBuf(len(runChainColumns))
	idCol, statusCol, createdCol, endedCol := colIndex(runChainColumns, "id"), colIndex(runChainColumns, "status"),
		colIndex(runChainColumns, "created_at"), colIndex(runChainColumns, "ended_at")
	var b []byte
	for runs.Next() {
		if err := runs.Scan(row.ptrs...); err != nil {
			return fmt.Errorf("read runs: %w", err)
		}
		id, _ := row.vals[idCol].(string)
		b = appendCanonicalHead(b[:0], chainRun, runChainColumns, row.vals)
		b = sc.appendFor(append(b, `,"steps":`...), id)
		b = fc.appendFor(append(b, `,"files":`...), id)
		b = append(b, '}')
		sum := sha256.Sum256(b)
		status, _ := row.vals[statusCol].(string)
		at, _ := row.vals[endedCol].(string)
		if at == "" {
			at, _ = row.vals[createdCol].(string)
		}
		out[chainKey{chainRun, id}] = rowDigest{sum: hex.EncodeToString(sum[:]), at: at,
			finished: status == "succeeded" || status == "failed" || status == "aborted"}
	}
	if err := runs.Err(); err != nil {
		return fmt.Errorf("read runs: %w", err)
	}
	if err := errors.Join(sc.err, fc.err); err != nil {
		return fmt.Errorf("read run steps and files: %w", err)
	}
	return nil
}

func eventDigests(ctx context.Context, q querier, kind string, out map[chainKey]rowDigest) error {
	table, cols := chainTable(kind)
	rows, err := q.QueryContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+table+` ORDER BY id`)
	if err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	defer rows.Close()
	row := newRowBuf(len(cols))
	atCol := colIndex(cols, "at")
	var b []byte
	for rows.Next() {
		if err := rows.Scan(row.ptrs...); err != nil {
			return fmt.Errorf("read %s: %w", table, err)
		}
		b = append(appendCanonicalHead(b[:0], kind, cols, row.vals), '}')
		sum := sha256.Sum256(b)
		at, _ := row.vals[atCol].(string)
		out[chainKey{kind, fmt.Sprint(row.vals[0])}] = rowDigest{sum: hex.EncodeToString(sum[:]), at: at, finished: true}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	return nil
}

func colIndex(cols []string, name string) int {
	for i, c := range cols {
		if c == name {
			return i
		}
	}
	panic("chain: no column " + name)
}

// chainFinishedRun appends run id to the chain when status is final.
func (s *Store) chainFinishedRun(ctx context.Context, tx querier, id string, status core.RunStatus) error {
	if !status.Finished() {
		return nil
	}
	return appendChain(ctx, tx, chainKey{chainRun, id}, s.now())
}
