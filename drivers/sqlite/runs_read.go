package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/runprov/runprov/core"
)

// The read half of the run store; runs_write.go has CreateRun and FinishRun.

// runColumns are the runs columns every read scans, in scanRun's order.
const runColumns = `id, repo, path, commit_hash, runfile_blob, image_ref, image_digest, index_digest, config_digest, approved,
	args, env, labels, argv, user, workdir, mounts, limits, runtime, runtime_version, weaker_sandbox,
	executor, slurm_job_id, slurm_array_task, slurm_node, slurm_partition, hostname, environment_sha256,
	system_kernel_sha256, drift, status, exit_code, reason, created_at, started_at, ended_at, reproduce_of, verdict`

// maxAmbiguous is how many candidates an ambiguous prefix error lists.
const maxAmbiguous = 10

// Run is for the producer and history: the run named by a unique id prefix, with
// its steps and manifests. Errors wrap core.ErrInvalid (not hex),
// core.ErrNotFound or core.ErrAmbiguous (naming the candidates).
func (s *Store) Run(ctx context.Context, idPrefix string) (*core.Run, error) {
	prefix := strings.ToLower(strings.TrimSpace(idPrefix))
	if back, ok := lastOffset(prefix); ok {
		return s.lastRun(ctx, idPrefix, back)
	}
	if prefix == "" || len(prefix) > 32 || strings.Trim(prefix, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("%w: %q is not a run id, a prefix of one (hex digits, as printed by runprov runs), last or last~N", core.ErrInvalid, idPrefix)
	}
	// A range scan on the primary key; one more row than listed tells
	// "more than maxAmbiguous".
	rows, err := s.db.QueryContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?`,
		prefix, prefix+"\xff", maxAmbiguous+1)
	if err != nil {
		return nil, fmt.Errorf("find run %s: %w", prefix, mapErr(err))
	}
	var found []core.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("read run %s: %w", prefix, err)
		}
		found = append(found, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find run %s: %w", prefix, mapErr(err))
	}
	switch {
	case len(found) == 0:
		return nil, &core.NameError{Kind: core.NameRun, Err: fmt.Errorf("run %s: %w", prefix, core.ErrNotFound)}
	case len(found) > 1:
		ids := make([]string, 0, len(found))
		for _, r := range found[:min(len(found), maxAmbiguous)] {
			// Whole ids: short ones may share the prefix given.
			ids = append(ids, r.ID+" ("+r.Created.UTC().Format(time.RFC3339)+")")
		}
		more := ""
		if len(found) > maxAmbiguous {
			more = ", ..."
		}
		return nil, fmt.Errorf("run prefix %s: %w: it matches %s%s; give more digits", prefix, core.ErrAmbiguous, strings.Join(ids, ", "), more)
	}
	r := &found[0]
	if err := s.loadRunDetails(ctx, r); err != nil {
		return nil, err
	}
	if key, sum, err := s.RunApproval(ctx, r.ID); err != nil {
		return nil, fmt.Errorf("read approval of run %s: %w", r.ID, mapErr(err))
	} else if sum != "" {
		r.Approval = &core.RunApproval{KeyID: key, SHA256: sum}
	}
	return r, nil
}

// lastOffset reads "last" (0) and "last~N" (N): the newest run and the
// one N runs before it, as runs lists them.
func lastOffset(name string) (int, bool) {
	if name == "last" {
		return 0, true
	}
	n, ok := strings.CutPrefix(name, "last~")
	if !ok {
		return 0, false
	}
	back, err := strconv.Atoi(n)
	if err != nil || back < 0 {
		return 0, false
	}
	return back, true
}

// lastRun returns the run back runs before the newest, in the order runs
// lists them (creation time, then id).
func (s *Store) lastRun(ctx context.Context, name string, back int) (*core.Run, error) {
	runs, err := s.Runs(ctx, core.RunFilter{Limit: back + 1})
	if err != nil {
		return nil, err
	}
	if len(runs) <= back {
		return nil, fmt.Errorf("run %s: %w: the store has %d runs", name, core.ErrNotFound, len(runs))
	}
	r := &runs[back]
	if err := s.loadRunDetails(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

// loadRunDetails reads the steps and the input and output manifests of r.
func (s *Store) loadRunDetails(ctx context.Context, r *core.Run) error {
	rows, err := s.db.QueryContext(ctx, `SELECT idx, argv, exit_code, started_at, ended_at FROM run_steps WHERE run_id = ? ORDER BY idx`, r.ID)
	if err != nil {
		return fmt.Errorf("read steps of run %s: %w", r.ID, mapErr(err))
	}
	r.Steps = []core.RunStep{}
	for rows.Next() {
		var (
			st           core.RunStep
			argv         string
			start, ended string
		)
		if err := rows.Scan(&st.Index, &argv, &st.ExitCode, &start, &ended); err != nil {
			rows.Close()
			return fmt.Errorf("read steps of run %s: %w", r.ID, err)
		}
		if err := unmarshalColumn("run_steps.argv", argv, &st.Argv); err != nil {
			rows.Close()
			return fmt.Errorf("read steps of run %s: %w", r.ID, err)
		}
		st.Start, st.End = parseOptTime(start), parseOptTime(ended)
		r.Steps = append(r.Steps, st)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read steps of run %s: %w", r.ID, mapErr(err))
	}

	rows, err = s.db.QueryContext(ctx, `SELECT kind, name, path, size, sha256, link, coalesce(cached_at, '') FROM run_files WHERE run_id = ? ORDER BY kind, name, path`, r.ID)
	if err != nil {
		return fmt.Errorf("read manifests of run %s: %w", r.ID, mapErr(err))
	}
	defer rows.Close()
	r.Inputs, r.Outputs = []core.FileRecord{}, []core.FileRecord{}
	for rows.Next() {
		var (
			kind, cached string
			f            core.FileRecord
		)
		if err := rows.Scan(&kind, &f.Name, &f.Path, &f.Size, &f.SHA256, &f.Link, &cached); err != nil {
			return fmt.Errorf("read manifests of run %s: %w", r.ID, err)
		}
		f.CachedAt = parseOptTime(cached)
		if kind == core.MountInput {
			r.Inputs = append(r.Inputs, f)
		} else {
			r.Outputs = append(r.Outputs, f)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read manifests of run %s: %w", r.ID, mapErr(err))
	}
	r.InputsCached, r.InputsHashedAt = core.InputsCacheSummary(r.Inputs)
	r.MarkSensitivity()
	if err := s.loadRunDevices(ctx, r); err != nil {
		return err
	}
	one := []core.Run{*r}
	if err := s.fillLabels(ctx, one); err != nil {
		return err
	}
	r.Note, r.Tags = one[0].Note, one[0].Tags
	return nil
}

// Runs is for the producer and history: runs matching f, newest first (by
// created_at, then id), without steps and manifests.
func (s *Store) Runs(ctx context.Context, f core.RunFilter) ([]core.Run, error) {
	var (
		where []string
		args  []any
	)
	if f.Status != "" {
		where = append(where, "status = ?")
		args = append(args, string(f.Status))
	}
	if f.Commit != "" {
		// Range scans use the indexes where LIKE would not.
		p := strings.ToLower(f.Commit)
		where = append(where, "commit_hash >= ? AND commit_hash < ?")
		args = append(args, p, p+"\xff")
	}
	if f.ImageDigest != "" {
		p := strings.ToLower(f.ImageDigest)
		if !strings.Contains(p, ":") {
			p = "sha256:" + p
		}
		where = append(where, "image_digest >= ? AND image_digest < ?")
		args = append(args, p, p+"\xff")
	}
	if f.Repo != "" {
		where = append(where, "repo = ?")
		args = append(args, f.Repo)
	}
	if f.Tag != "" {
		where = append(where, "id IN (SELECT run_id FROM run_tags WHERE name = ?)")
		args = append(args, f.Tag)
	}
	if !f.Since.IsZero() {
		// Stored times end in "Z" after a trimmed fraction, and "Z" sorts
		// after "." and digits: the first term is the index range from the
		// start of since's second, the second compares without the "Z",
		// where text order is time order.
		since := strings.TrimSuffix(timeText(f.Since), "Z")
		where = append(where, "created_at >= ? AND rtrim(created_at, 'Z') >= ?")
		args = append(args, since[:len("2006-01-02T15:04:05")], since)
	}
	q := `SELECT ` + runColumns + ` FROM runs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, id DESC"
	if f.Limit > 0 {
		q += " LIMIT " + strconv.Itoa(f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", mapErr(err))
	}
	defer rows.Close()
	out := []core.Run{}
	var dec runDecoder
	for rows.Next() {
		r, err := dec.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", mapErr(err))
	}
	// RFC 3339 text with trimmed fractions does not always sort as time
	// ("...:05Z" sorts after "...:05.5Z"); fix the order within the page.
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID > out[j].ID
	})
	if err := s.fillLabels(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// scanRun reads one row of runColumns.
func scanRun(r rowScanner) (core.Run, error) { return new(runDecoder).scan(r) }

// runDecoder reads rows of runColumns. The runs of one Runfile repeat the
// same mounts and limits, so a listing decodes each distinct text once.
type runDecoder struct {
	mounts map[string][]core.RunMount
	limits map[string]core.RunLimits
}

// scan reads one row.
func (d *runDecoder) scan(r rowScanner) (core.Run, error) {
	var (
		run                                    core.Run
		args, env, labels, argv, mounts, lim   string
		slurmJob, slurmNode, slurmPart, status string
		slurmTask, exit                        sql.NullInt64
		created, started, ended                string
	)
	err := r.Scan(&run.ID, &run.Repo, &run.Path, &run.Commit, &run.RunfileBlob, &run.ImageRef, &run.ImageDigest, &run.IndexDigest,
		&run.ConfigDigest, &run.Approved, &args, &env, &labels, &argv, &run.User, &run.Workdir, &mounts, &lim, &run.Runtime,
		&run.RuntimeVersion, &run.WeakerSandbox, &run.Executor, &slurmJob, &slurmTask, &slurmNode, &slurmPart, &run.Hostname,
		&run.EnvironmentSHA256, &run.SystemKernelSHA256, &run.Drift, &status, &exit, &run.Reason, &created, &started, &ended,
		&run.ReproduceOf, &run.Verdict)
	if err != nil {
		return run, err
	}
	run.Status = core.RunStatus(status)
	if exit.Valid {
		c := int(exit.Int64)
		run.ExitCode = &c
	}
	if slurmJob != "" {
		run.Slurm = &core.SlurmJob{JobID: slurmJob, Node: slurmNode, Partition: slurmPart}
		if slurmTask.Valid {
			t := int(slurmTask.Int64)
			run.Slurm.ArrayTask = &t
		}
	}
	run.Created, run.Started, run.Ended = parseOptTime(created), parseOptTime(started), parseOptTime(ended)
	var ok [4]bool // read by the plain readers; encoding/json reads the rest
	run.Args, ok[0] = plainStringMap(args)
	run.Labels, ok[1] = plainStringMap(labels)
	run.Env, ok[2] = plainStrings(env)
	run.Argv, ok[3] = plainStrings(argv)
	for i, c := range []struct {
		col  string
		text string
		dst  any
	}{
		{"args", args, &run.Args}, {"labels", labels, &run.Labels}, {"env", env, &run.Env},
		{"argv", argv, &run.Argv},
	} {
		if ok[i] {
			continue
		}
		if err := unmarshalColumn("runs."+c.col, c.text, c.dst); err != nil {
			return run, fmt.Errorf("run %s: %w", run.ID, err)
		}
	}
	if run.Mounts, err = d.decodeMounts(mounts); err != nil {
		return run, fmt.Errorf("run %s: %w", run.ID, err)
	}
	if run.Limits, err = d.decodeLimits(lim); err != nil {
		return run, fmt.Errorf("run %s: %w", run.ID, err)
	}
	// Empty collections read back as empty, not null, so JSON output and
	// comparisons do not depend on how a row was written.
	if run.Args == nil {
		run.Args = map[string]string{}
	}
	if run.Labels == nil {
		run.Labels = map[string]string{}
	}
	if run.Env == nil {
		run.Env = []string{}
	}
	if run.Argv == nil {
		run.Argv = []string{}
	}
	if run.Mounts == nil {
		run.Mounts = []core.RunMount{}
	}
	return run, nil
}

// decodeMounts reads the mounts column; every run gets its own slice.
func (d *runDecoder) decodeMounts(text string) ([]core.RunMount, error) {
	if m, ok := d.mounts[text]; ok {
		return slices.Clone(m), nil
	}
	var m []core.RunMount
	if err := unmarshalColumn("runs.mounts", text, &m); err != nil {
		return nil, err
	}
	if d.mounts == nil {
		d.mounts = map[string][]core.RunMount{}
	}
	d.mounts[text] = m
	return slices.Clone(m), nil
}

// decodeLimits reads the limits column.
func (d *runDecoder) decodeLimits(text string) (core.RunLimits, error) {
	if l, ok := d.limits[text]; ok {
		return l, nil
	}
	l, err := parseLimits(text)
	if err != nil {
		return l, err
	}
	if d.limits == nil {
		d.limits = map[string]core.RunLimits{}
	}
	d.limits[text] = l
	return l, nil
}

func unmarshalColumn(col, text string, dst any) error {
	if text == "" || text == "null" {
		return nil
	}
	if err := json.Unmarshal([]byte(text), dst); err != nil {
		return fmt.Errorf("%w: column %s is not the JSON it should be: %v", core.ErrCorrupt, col, err)
	}
	return nil
}

// parseLimits reads the limits column. The timeout is a JSON number of
// nanoseconds (time.Duration's encoding); a duration string ("90s") is
// accepted too so hand-written rows read back.
func parseLimits(text string) (core.RunLimits, error) {
	var l core.RunLimits
	if text == "" || text == "null" || text == "{}" {
		return l, nil
	}
	var raw struct {
		CPUs        float64         `json:"cpus"`
		MemoryBytes int64           `json:"memory_bytes"`
		Pids        int64           `json:"pids"`
		Timeout     json.RawMessage `json:"timeout"`
		Note        string          `json:"note"`
	}
	if err := unmarshalColumn("runs.limits", text, &raw); err != nil {
		return l, err
	}
	l = core.RunLimits{CPUs: raw.CPUs, MemoryBytes: raw.MemoryBytes, Pids: raw.Pids, Note: raw.Note}
	if len(raw.Timeout) > 0 && string(raw.Timeout) != "null" {
		var ns int64
		if err := json.Unmarshal(raw.Timeout, &ns); err == nil {
			l.Timeout = time.Duration(ns)
		} else {
			var s string
			if json.Unmarshal(raw.Timeout, &s) != nil {
				return l, fmt.Errorf("%w: column runs.limits has timeout %s", core.ErrCorrupt, raw.Timeout)
			}
			if l.Timeout, err = time.ParseDuration(s); err != nil {
				return l, fmt.Errorf("%w: column runs.limits has timeout %q", core.ErrCorrupt, s)
			}
		}
	}
	return l, nil
}

// parseOptTime reads a time column that may be empty.
func parseOptTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	return parseTime(s)
}
