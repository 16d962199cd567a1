package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/runprov/runprov/core"
)

// The write half of the run store (the read half is runs_read.go).

// runWriteColumns are the columns of runs that CreateRun and FinishRun write,
// in the order of runValues.
const runWriteColumns = `repo, path, commit_hash, runfile_blob, image_ref, image_digest, index_digest, config_digest,
	approved, args, env, labels, argv, user, workdir, mounts, limits, runtime, runtime_version, weaker_sandbox,
	executor, slurm_job_id, slurm_array_task, slurm_node, slurm_partition, hostname, environment_sha256,
	system_kernel_sha256, drift, status, exit_code, reason, created_at, started_at, ended_at, reproduce_of, verdict`

func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

func runValues(r *core.Run) ([]any, error) {
	args, labels := r.Args, r.Labels
	if args == nil {
		args = map[string]string{}
	}
	if labels == nil {
		labels = map[string]string{}
	}
	env, argv, mounts := r.Env, r.Argv, r.Mounts
	if env == nil {
		env = []string{}
	}
	if argv == nil {
		argv = []string{}
	}
	if mounts == nil {
		mounts = []core.RunMount{}
	}
	var texts [6]string
	for i, v := range []any{args, env, labels, argv, mounts, r.Limits} {
		t, err := jsonText(v)
		if err != nil {
			return nil, fmt.Errorf("encode run %s: %w", r.ID, err)
		}
		texts[i] = t
	}
	var slurm core.SlurmJob
	if r.Slurm != nil {
		slurm = *r.Slurm
	}
	var task, exit any
	if slurm.ArrayTask != nil {
		task = *slurm.ArrayTask
	}
	if r.ExitCode != nil {
		exit = *r.ExitCode
	}
	optTime := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return timeText(t)
	}
	return []any{r.Repo, r.Path, r.Commit, r.RunfileBlob, r.ImageRef, r.ImageDigest, r.IndexDigest, r.ConfigDigest,
		r.Approved, texts[0], texts[1], texts[2], texts[3], r.User, r.Workdir, texts[4], texts[5], r.Runtime, r.RuntimeVersion, r.WeakerSandbox,
		r.Executor, slurm.JobID, task, slurm.Node, slurm.Partition, r.Hostname, r.EnvironmentSHA256,
		r.SystemKernelSHA256, r.Drift, string(r.Status), exit, r.Reason, timeText(r.Created), optTime(r.Started), optTime(r.Ended), r.ReproduceOf, r.Verdict}, nil
}

func checkRun(r *core.Run) error {
	switch {
	case len(r.ID) != 32:
		return fmt.Errorf("run id %q: %w: want 32 hex digits", r.ID, core.ErrInvalid)
	case r.Status == "":
		return fmt.Errorf("run %s: %w: no status", r.ID, core.ErrInvalid)
	case r.Created.IsZero():
		return fmt.Errorf("run %s: %w: no creation time", r.ID, core.ErrInvalid)
	}
	return nil
}

// CreateRun is for the producer and history. A running run is owned by this
// process (owner_pid, owner_host) so that AbortStaleRuns can tell when its
// runprov died.
func (s *Store) CreateRun(ctx context.Context, r *core.Run) error {
	if err := checkRun(r); err != nil {
		return err
	}
	vals, err := runValues(r)
	if err != nil {
		return err
	}
	pid, host, start := 0, "", ""
	if r.Status == core.RunRunning {
		pid = os.Getpid()
		start = core.ProcessStart(pid)
		host = r.Hostname
		if host == "" {
			host, _ = os.Hostname()
		}
	}
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		q := `INSERT INTO runs(id, ` + runWriteColumns + `, owner_pid, owner_host, owner_start) VALUES(?` + strings.Repeat(", ?", len(vals)+3) + `)`
		if _, err := tx.ExecContext(ctx, q, append(append([]any{r.ID}, vals...), pid, host, start)...); err != nil {
			if isConstraint(err) {
				return fmt.Errorf("run %s: %w", r.ID, core.ErrExists)
			}
			return fmt.Errorf("store run %s: %w", r.ID, err)
		}
		if err := putRunChildren(ctx, tx, r); err != nil {
			return err
		}
		if r.Note != "" {
			if err := s.addRunEvent(ctx, tx, r.ID, runEventNote, r.Note); err != nil {
				return err
			}
		}
		return s.chainFinishedRun(ctx, tx, r.ID, r.Status)
	})
}

// FinishRun is for the producer and history: every column of r (but the id) and
// its steps and manifests replace what was stored, in one transaction.
// Returns an error wrapping core.ErrNotFound when r.ID was never created.
func (s *Store) FinishRun(ctx context.Context, r *core.Run) error {
	if err := checkRun(r); err != nil {
		return err
	}
	return s.writeTx(ctx, func(tx *sql.Tx) error { return s.finishRun(ctx, tx, r) })
}

// finishRun is FinishRun within tx.
func (s *Store) finishRun(ctx context.Context, tx txQuerier, r *core.Run) error {
	vals, err := runValues(r)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE runs SET `+runUpdateSet+` WHERE id = ?`, append(vals, r.ID)...)
	if err != nil {
		return fmt.Errorf("finish run %s: %w", r.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("run %s: %w", r.ID, core.ErrNotFound)
	}
	for _, t := range []string{"run_steps", "run_files"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+t+` WHERE run_id = ?`, r.ID); err != nil {
			return err
		}
	}
	if err := putRunChildren(ctx, tx, r); err != nil {
		return err
	}
	return s.chainFinishedRun(ctx, tx, r.ID, r.Status)
}

// runUpdateSet is "col = ?, ..." over runWriteColumns, in runValues' order.
var runUpdateSet = strings.Join(splitColumns(runWriteColumns), " = ?, ") + " = ?"

func putRunChildren(ctx context.Context, tx txQuerier, r *core.Run) error {
	if a := r.Approval; a != nil {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO run_approvals(run_id, key_id, sha256) VALUES(?, ?, ?)`, r.ID, a.KeyID, a.SHA256); err != nil {
			return fmt.Errorf("store approval of run %s: %w", r.ID, err)
		}
	}
	for _, st := range r.Steps {
		argv, err := jsonText(st.Argv)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO run_steps(run_id, idx, argv, exit_code, started_at, ended_at) VALUES(?, ?, ?, ?, ?, ?)`,
			r.ID, st.Index, argv, st.ExitCode, zeroText(st.Start), zeroText(st.End))
		if err != nil {
			return fmt.Errorf("store step %d of run %s: %w", st.Index, r.ID, err)
		}
	}
	if err := putRunFiles(ctx, tx, r); err != nil {
		return err
	}
	return putRunDevices(ctx, tx, r)
}

// putRunFiles inserts the manifests of r through one prepared statement.
func putRunFiles(ctx context.Context, tx txQuerier, r *core.Run) error {
	if len(r.Inputs)+len(r.Outputs) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO run_files(run_id, kind, name, path, size, sha256, link, cached_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for kind, files := range map[string][]core.FileRecord{core.MountInput: r.Inputs, core.MountOutput: r.Outputs} {
		for _, f := range files {
			if _, err := st.ExecContext(ctx, r.ID, kind, f.Name, f.Path, f.Size, f.SHA256, f.Link, nullTime(f.CachedAt)); err != nil {
				return fmt.Errorf("store %s file %s of run %s: %w", kind, f.Path, r.ID, err)
			}
		}
	}
	return nil
}

// AbortStaleRuns marks aborted every running run whose owner process is
// gone: isAlive(owner_pid, owner_host, owner_start) is false. Before that,
// clean(id) (when not nil) undoes what the run left and returns the output
// files it finds; they are stored with the aborted status in one
// transaction, so a run is never aborted without them. It returns the ids
// it marked. Runs without an owner (queued on Slurm) are left alone.
func (s *Store) AbortStaleRuns(ctx context.Context, isAlive func(pid int, host, start string) bool, clean func(id string) []core.FileRecord) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, owner_pid, owner_host, owner_start FROM runs WHERE status = 'running' AND owner_pid > 0`)
	if err != nil {
		return nil, mapErr(err)
	}
	type owner struct {
		id          string
		pid         int
		host, start string
	}
	var stale []owner
	for rows.Next() {
		var o owner
		if err := rows.Scan(&o.id, &o.pid, &o.host, &o.start); err != nil {
			rows.Close()
			return nil, err
		}
		if !isAlive(o.pid, o.host, o.start) {
			stale = append(stale, o)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(stale) == 0 {
		return nil, mapErr(err)
	}
	outputs := map[string][]core.FileRecord{}
	if clean != nil {
		for _, o := range stale {
			outputs[o.id] = clean(o.id)
		}
	}
	var ids []string
	now := timeText(s.now())
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		ids = ids[:0] // a retried transaction starts over
		for _, o := range stale {
			res, err := tx.ExecContext(ctx, `UPDATE runs SET status = 'aborted', ended_at = CASE WHEN ended_at = '' THEN ? ELSE ended_at END,
				reason = ? WHERE id = ? AND status = 'running' AND owner_pid = ?`,
				now, fmt.Sprintf("runprov (pid %d on %s) ended without finishing the run", o.pid, o.host), o.id, o.pid)
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k == 0 {
				continue // another process aborted it first
			}
			ids = append(ids, o.id)
			for _, f := range outputs[o.id] {
				_, err := tx.ExecContext(ctx, `INSERT INTO run_files(run_id, kind, name, path, size, sha256, link) VALUES(?, ?, ?, ?, ?, ?, ?)`,
					o.id, core.MountOutput, f.Name, f.Path, f.Size, f.SHA256, f.Link)
				if err != nil {
					return fmt.Errorf("store output %s of run %s: %w", f.Path, o.id, err)
				}
			}
			// Last: the chain entry commits to the outputs just stored.
			if err := s.chainFinishedRun(ctx, tx, o.id, core.RunAborted); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// LastRunSnapshot returns the newest run of commit other than exceptID
// that recorded a system snapshot: its id and its system_kernel_sha256;
// ids are "" when there is none. The producer compares snapshots with it
// (the drift summary).
func (s *Store) LastRunSnapshot(ctx context.Context, commit, exceptID string) (id, kernelSHA string, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT id, system_kernel_sha256 FROM runs
		WHERE commit_hash = ? AND id <> ? AND system_kernel_sha256 <> '' ORDER BY created_at DESC LIMIT 1`, commit, exceptID).Scan(&id, &kernelSHA)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	return id, kernelSHA, mapErr(err)
}

// nullTime is NULL for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return timeText(t)
}

func zeroText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return timeText(t)
}

func splitColumns(cols string) []string {
	f := strings.FieldsFunc(cols, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
	return f
}

func isConstraint(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "UNIQUE constraint") || strings.Contains(err.Error(), "PRIMARY KEY"))
}

// SetRunSnapshot records the host snapshot and drift summary of run id,
// taken while it started (producer.RunWriter).
func (s *Store) SetRunSnapshot(ctx context.Context, id, environmentSHA, kernelSHA, drift string) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE runs SET environment_sha256 = ?, system_kernel_sha256 = ?, drift = ? WHERE id = ?`,
			environmentSHA, kernelSHA, drift, id)
		if err != nil {
			return fmt.Errorf("record the snapshot of run %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("run %s: %w", id, core.ErrNotFound)
		}
		return nil
	})
}
