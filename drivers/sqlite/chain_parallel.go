package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// snapshotMark changes with every write runprov makes to the chained
// tables: each inserts a row or appends to the chain. Two read
// transactions with the same mark see the same rows.
const snapshotMark = `SELECT (SELECT coalesce(max(seq), 0) FROM chain) || ' ' || (SELECT coalesce(max(rowid), 0) FROM runs) || ' ' ||
	(SELECT coalesce(max(rowid), 0) FROM run_steps) || ' ' || (SELECT coalesce(max(rowid), 0) FROM run_files) || ' ' ||
	(SELECT coalesce(max(id), 0) FROM image_events) || ' ' || (SELECT coalesce(max(id), 0) FROM config_events)`

// childGroup is the canonical steps and files arrays of one run.
type childGroup struct {
	id           string
	steps, files []byte
}

// runDigestsSplit is runDigests on two cores: runs are read on conn, and
// their steps and files at the same time on a second connection whose read
// transaction sees the same snapshot. It reports false, having done
// nothing, when a write came between the two transactions' starts.
func (s *Store) runDigestsSplit(ctx context.Context, conn *sql.Conn, out map[chainKey]rowDigest) (bool, error) {
	other, err := s.db.Conn(ctx)
	if err != nil {
		return false, mapErr(err)
	}
	defer other.Close()
	if err := bigCache(ctx, other); err != nil {
		return false, mapErr(err)
	}
	if _, err := other.ExecContext(ctx, "BEGIN"); err != nil {
		return false, mapErr(err)
	}
	defer other.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	var markA, markB string
	if err := conn.QueryRowContext(ctx, snapshotMark).Scan(&markA); err != nil {
		return false, mapErr(err)
	}
	if err := other.QueryRowContext(ctx, snapshotMark).Scan(&markB); err != nil {
		return false, mapErr(err)
	}
	if markA != markB {
		return false, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	groups := make(chan []childGroup, 4)
	errc := make(chan error, 1)
	go func() { errc <- readChildren(ctx, other, groups) }()
	if err := hashRuns(ctx, conn, groups, out); err != nil {
		cancel()
		for range groups {
		}
		<-errc
		return true, err
	}
	// The rest are steps and files of runs that do not exist.
	for range groups {
	}
	return true, <-errc
}

// readChildren sends every run's steps and files, by run id, in batches.
func readChildren(ctx context.Context, q querier, groups chan<- []childGroup) error {
	defer close(groups)
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
	sc, fc := newChildCursor(steps, stepChainColumns), newChildCursor(files, fileChainColumns)
	batch := make([]childGroup, 0, 256)
	for sc.ok || fc.ok {
		id := sc.runID
		if !sc.ok || (fc.ok && fc.runID < id) {
			id = fc.runID
		}
		batch = append(batch, childGroup{id: id, steps: sc.appendFor(nil, id), files: fc.appendFor(nil, id)})
		if len(batch) == cap(batch) {
			select {
			case groups <- batch:
			case <-ctx.Done():
				return ctx.Err()
			}
			batch = make([]childGroup, 0, 256)
		}
	}
	if len(batch) > 0 {
		select {
		case groups <- batch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := errors.Join(sc.err, fc.err); err != nil {
		return fmt.Errorf("read run steps and files: %w", err)
	}
	return nil
}

// hashRuns reads the runs in id order and joins each with its children
// from groups (also in id order).
func hashRuns(ctx context.Context, q querier, groups <-chan []childGroup, out map[chainKey]rowDigest) error {
	runs, err := q.QueryContext(ctx, `SELECT `+strings.Join(runChainColumns, ", ")+` FROM runs ORDER BY id`)
	if err != nil {
		return fmt.Errorf("read runs: %w", err)
	}
	defer runs.Close()
	var (
		pending []childGroup
		more    = true
		row     = newRowBuf(len(runChainColumns))
		b       []byte
	)
	idCol, statusCol, createdCol, endedCol := colIndex(runChainColumns, "id"), colIndex(runChainColumns, "status"),
		colIndex(runChainColumns, "created_at"), colIndex(runChainColumns, "ended_at")
	for runs.Next() {
		if err := runs.Scan(row.ptrs...); err != nil {
			return fmt.Errorf("read runs: %w", err)
		}
		id, _ := row.vals[idCol].(string)
		// Groups of ids before this one belong to no run: Store.Check
		// reports those.
		for {
			for len(pending) > 0 && pending[0].id < id {
				pending = pending[1:]
			}
			if len(pending) > 0 || !more {
				break
			}
			pending, more = <-groups
		}
		steps, files := []byte("[]"), []byte("[]")
		if len(pending) > 0 && pending[0].id == id {
			steps, files = pending[0].steps, pending[0].files
		}
		b = appendCanonicalHead(b[:0], chainRun, runChainColumns, row.vals)
		b = append(append(b, `,"steps":`...), steps...)
		b = append(append(b, `,"files":`...), files...)
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
	return nil
}
