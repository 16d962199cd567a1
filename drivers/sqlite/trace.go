package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/runprov/runprov/core"
)

// Content lookups for lineage: which runs produced or used a sha256. They
// read the run_files_content index (migration 0008) alone.

// ContentRuns returns up to limit runs, newest first, that have a file of
// kind ("input" or "output") whose content is sha256 (hex), without steps
// and manifests, and how many such runs there are in all. No such run is
// not an error: it returns none and 0.
func (s *Store) ContentRuns(ctx context.Context, sha256, kind string, limit int) ([]core.Run, int, error) {
	sha256 = strings.ToLower(sha256)
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT count(DISTINCT run_id) FROM run_files WHERE sha256 = ? AND kind = ?`,
		sha256, kind).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("find runs with %s sha256:%s: %w", kind, sha256, mapErr(err))
	}
	if total == 0 || limit <= 0 {
		return []core.Run{}, total, nil
	}
	// Content most runs share (a common config) is found fastest walking
	// runs newest first; rarer content by sorting the runs that have it.
	var approxRuns int
	if err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(rowid), 0) FROM runs`).Scan(&approxRuns); err != nil {
		return nil, 0, fmt.Errorf("count runs: %w", mapErr(err))
	}
	q := `SELECT ` + runColumns + ` FROM runs WHERE id IN (SELECT run_id FROM run_files WHERE sha256 = ? AND kind = ?)
		ORDER BY created_at DESC, id DESC LIMIT ?`
	if total*50 >= approxRuns {
		q = `SELECT ` + runColumns + ` FROM runs INDEXED BY runs_created WHERE EXISTS
			(SELECT 1 FROM run_files WHERE sha256 = ? AND kind = ? AND run_id = runs.id) ORDER BY created_at DESC LIMIT ?`
	}
	rows, err := s.db.QueryContext(ctx, q, sha256, kind, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("find runs with %s sha256:%s: %w", kind, sha256, mapErr(err))
	}
	defer rows.Close()
	out := []core.Run{}
	var dec runDecoder
	for rows.Next() {
		r, err := dec.scan(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("find runs with %s sha256:%s: %w", kind, sha256, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("find runs with %s sha256:%s: %w", kind, sha256, mapErr(err))
	}
	// Stored times with trimmed fractions do not always sort as text.
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID > out[j].ID
	})
	return out, total, nil
}

// RunFiles returns the input and output manifests of the run with this
// full id, each ordered by name and path; none for an unknown run.
func (s *Store) RunFiles(ctx context.Context, runID string) (inputs, outputs []core.FileRecord, err error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, name, path, size, sha256, link FROM run_files WHERE run_id = ? ORDER BY kind, name, path`, runID)
	if err != nil {
		return nil, nil, fmt.Errorf("read manifests of run %s: %w", runID, mapErr(err))
	}
	defer rows.Close()
	inputs, outputs = []core.FileRecord{}, []core.FileRecord{}
	for rows.Next() {
		var (
			kind string
			f    core.FileRecord
		)
		if err := rows.Scan(&kind, &f.Name, &f.Path, &f.Size, &f.SHA256, &f.Link); err != nil {
			return nil, nil, fmt.Errorf("read manifests of run %s: %w", runID, err)
		}
		if kind == core.MountInput {
			inputs = append(inputs, f)
		} else {
			outputs = append(outputs, f)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read manifests of run %s: %w", runID, mapErr(err))
	}
	return inputs, outputs, nil
}

// PreviousRun returns the newest run of commit created before the run
// before (a full id), without steps and manifests; core.ErrNotFound when
// there is none.
func (s *Store) PreviousRun(ctx context.Context, commit string, before *core.Run) (*core.Run, error) {
	// Up to the end of before's second by text (an index range on
	// runs_commit_created); the exact order is decided on times below.
	bound := timeText(before.Created)[:len("2006-01-02T15:04:05")] + "\xff"
	rows, err := s.db.QueryContext(ctx, `SELECT `+runColumns+` FROM runs WHERE commit_hash = ? AND created_at <= ? AND id <> ?
		ORDER BY created_at DESC LIMIT 50`, commit, bound, before.ID)
	if err != nil {
		return nil, fmt.Errorf("find the run before %s: %w", before.ID, mapErr(err))
	}
	defer rows.Close()
	var best *core.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("find the run before %s: %w", before.ID, err)
		}
		if r.Created.After(before.Created) || (r.Created.Equal(before.Created) && r.ID > before.ID) {
			continue
		}
		if best == nil || r.Created.After(best.Created) {
			best = &r
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find the run before %s: %w", before.ID, mapErr(err))
	}
	if best == nil {
		return nil, fmt.Errorf("run before %s of commit %s: %w", before.ID, commit, core.ErrNotFound)
	}
	return best, nil
}

// LoadDetails fills in the steps and manifests of runs (read by Runs
// without them) in two queries, however many runs there are.
func (s *Store) LoadDetails(ctx context.Context, runs []core.Run) error {
	idx := make(map[string]*core.Run, len(runs))
	ids := make([]string, 0, len(runs))
	for i := range runs {
		r := &runs[i]
		r.Steps, r.Inputs, r.Outputs = []core.RunStep{}, []core.FileRecord{}, []core.FileRecord{}
		idx[r.ID] = r
		ids = append(ids, r.ID)
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT run_id, idx, argv, exit_code, started_at, ended_at FROM run_steps
		WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY run_id, idx`, string(list))
	if err != nil {
		return fmt.Errorf("read steps: %w", mapErr(err))
	}
	for rows.Next() {
		var (
			id, argv, start, ended string
			st                     core.RunStep
		)
		if err := rows.Scan(&id, &st.Index, &argv, &st.ExitCode, &start, &ended); err != nil {
			rows.Close()
			return fmt.Errorf("read steps: %w", err)
		}
		if err := unmarshalColumn("run_steps.argv", argv, &st.Argv); err != nil {
			rows.Close()
			return fmt.Errorf("read steps of run %s: %w", id, err)
		}
		st.Start, st.End = parseOptTime(start), parseOptTime(ended)
		idx[id].Steps = append(idx[id].Steps, st)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read steps: %w", mapErr(err))
	}
	rows, err = s.db.QueryContext(ctx, `SELECT run_id, kind, name, path, size, sha256, link FROM run_files
		WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY run_id, kind, name, path`, string(list))
	if err != nil {
		return fmt.Errorf("read manifests: %w", mapErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id, kind string
			f        core.FileRecord
		)
		if err := rows.Scan(&id, &kind, &f.Name, &f.Path, &f.Size, &f.SHA256, &f.Link); err != nil {
			return fmt.Errorf("read manifests: %w", err)
		}
		if r := idx[id]; kind == core.MountInput {
			r.Inputs = append(r.Inputs, f)
		} else {
			r.Outputs = append(r.Outputs, f)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read manifests: %w", mapErr(err))
	}
	return nil
}
