package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"

	"github.com/runprov/runprov/core"
)

// Run events (migration 0012): a run's note and its tags, an append-only
// log whose every row joins the hash chain as it is written.
const (
	runEventNote  = "note"
	runEventTag   = "tag"
	runEventUntag = "untag"
)

var tagRE = core.LazyRegexp(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidTag checks a tag name.
func ValidTag(name string) error {
	if !tagRE().MatchString(name) {
		return fmt.Errorf("%w: tag %q: use 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit", core.ErrInvalid, name)
	}
	return nil
}

// addRunEvent writes one event and chains it, in tx.
func (s *Store) addRunEvent(ctx context.Context, tx *sql.Tx, runID, action, value string) error {
	name, uid := whoami()
	res, err := tx.ExecContext(ctx, `INSERT INTO run_events(run_id, action, value, at, user, uid) VALUES(?, ?, ?, ?, ?, ?)`,
		runID, action, value, timeText(s.now()), name, uid)
	if err != nil {
		return fmt.Errorf("record %s of run %s: %w", action, runID, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return err
	}
	return appendChain(ctx, tx, chainKey{chainRunEvent, strconv.FormatInt(id, 10)}, s.now())
}

// TagRun gives run id (a full id) the tag name, or takes it away with
// remove. It reports whether anything changed: tagging a run that has the
// tag, or untagging one that has not, writes nothing. Errors wrap
// core.ErrInvalid (a bad name) or core.ErrNotFound (no such run).
func (s *Store) TagRun(ctx context.Context, id, name string, remove bool) (bool, error) {
	if err := ValidTag(name); err != nil {
		return false, err
	}
	changed := false
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM runs WHERE id = ?`, id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("run %s: %w", id, core.ErrNotFound)
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM run_tags WHERE run_id = ? AND name = ?`, id, name).Scan(&n); err != nil {
			return err
		}
		if (n > 0) != remove {
			return nil
		}
		changed = true
		action := runEventTag
		if remove {
			action = runEventUntag
		}
		return s.addRunEvent(ctx, tx, id, action, name)
	})
	return changed, mapErr(err)
}

// runLabels holds the note and tags of runs as their events leave them.
type runLabels struct {
	note string
	tags map[string]bool
}

// readRunLabels replays the events of the runs ids (all runs when ids is
// nil).
func (s *Store) readRunLabels(ctx context.Context, ids []string) (map[string]*runLabels, error) {
	q, args := `SELECT run_id, action, value FROM run_events ORDER BY id`, []any(nil)
	if len(ids) == 1 {
		q, args = `SELECT run_id, action, value FROM run_events WHERE run_id = ? ORDER BY id`, []any{ids[0]}
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read run notes and tags: %w", mapErr(err))
	}
	defer rows.Close()
	out := map[string]*runLabels{}
	for rows.Next() {
		var id, action, value string
		if err := rows.Scan(&id, &action, &value); err != nil {
			return nil, fmt.Errorf("read run notes and tags: %w", err)
		}
		l := out[id]
		if l == nil {
			l = &runLabels{tags: map[string]bool{}}
			out[id] = l
		}
		switch action {
		case runEventNote:
			if l.note == "" {
				l.note = value
			}
		case runEventTag:
			l.tags[value] = true
		case runEventUntag:
			delete(l.tags, value)
		}
	}
	return out, mapErr(rows.Err())
}

// fillLabels sets Note and Tags of runs.
func (s *Store) fillLabels(ctx context.Context, runs []core.Run) error {
	if len(runs) == 0 {
		return nil
	}
	var ids []string
	if len(runs) == 1 {
		ids = []string{runs[0].ID}
	}
	labels, err := s.readRunLabels(ctx, ids)
	if err != nil {
		return err
	}
	for i := range runs {
		l := labels[runs[i].ID]
		if l == nil {
			continue
		}
		runs[i].Note = l.note
		runs[i].Tags = make([]string, 0, len(l.tags))
		for t := range l.tags {
			runs[i].Tags = append(runs[i].Tags, t)
		}
		sort.Strings(runs[i].Tags)
		if len(runs[i].Tags) == 0 {
			runs[i].Tags = nil
		}
	}
	return nil
}

// Tags returns the names of the tags runs have now, sorted.
func (s *Store) Tags(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT name FROM run_tags ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list tags: %w", mapErr(err))
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("list tags: %w", err)
		}
		out = append(out, n)
	}
	return out, mapErr(rows.Err())
}
