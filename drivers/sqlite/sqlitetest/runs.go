// Package sqlitetest writes synthetic rows into a real runprov store for
// tests and benchmarks: history listings over 100,000 runs cannot wait for
// 100,000 containers. It is not used by runprov itself.
package sqlitetest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/runprov/runprov/core"
)

// Base is the creation time of synthetic run 0.
var Base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// RunID is the id of synthetic run i: deterministic, 32 hex digits, and not
// ordered like i (the first 8 digits are scrambled), so a listing sorted by
// id instead of time is caught. InsertSynthetic computes the same in SQL.
func RunID(i int) string {
	return fmt.Sprintf("%08x%024x", uint32(uint64(i)*2654435761), i)
}

// Hex64 is a deterministic 64-digit hex string for seed.
func Hex64(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return hex.EncodeToString(sum[:])
}

// SyntheticRun is run i of a fixture: created i seconds (plus a fraction)
// after Base, on one of 10 commits and 5 images, with a finished status,
// a step, one input and outputs files.
func SyntheticRun(i, outputs int) core.Run {
	created := Base.Add(time.Duration(i)*time.Second + 123456789)
	exit := i % 3
	status := core.RunSucceeded
	if exit != 0 {
		status = core.RunFailed
	}
	r := core.Run{
		ID:                 RunID(i),
		Repo:               "default",
		Path:               "Runfile",
		Commit:             Hex64(fmt.Sprint("commit", i%10))[:40],
		RunfileBlob:        Hex64(fmt.Sprint("blob", i%10))[:40],
		ImageRef:           "localhost/synthetic:latest",
		ImageDigest:        "sha256:" + Hex64(fmt.Sprint("image", i%5)),
		ConfigDigest:       "sha256:" + Hex64(fmt.Sprint("config", i%5)),
		Approved:           true,
		Args:               map[string]string{"N": fmt.Sprint(i)},
		Env:                []string{"PATH=/usr/bin:/bin", "TMPDIR=/scratch"},
		Labels:             map[string]string{"project": "synthetic"},
		Argv:               []string{"/bin/analyse", "--n", fmt.Sprint(i)},
		User:               "65534:65534",
		Workdir:            "/",
		Mounts:             []core.RunMount{{Kind: core.MountInput, Name: "data", Source: "/data/in", Target: "/safe_data", ReadOnly: true}, {Kind: core.MountOutput, Source: "/data/out", Target: "/safe_outputs"}},
		Limits:             core.RunLimits{CPUs: 1, MemoryBytes: 1 << 30, Pids: 128, Timeout: time.Hour},
		Runtime:            "runc",
		RuntimeVersion:     "1.1.5",
		Executor:           "local",
		Hostname:           "node" + fmt.Sprint(i%4),
		EnvironmentSHA256:  "",
		SystemKernelSHA256: "",
		Status:             status,
		ExitCode:           &exit,
		Created:            created,
		Started:            created.Add(time.Millisecond),
		Ended:              created.Add(time.Duration(500+i%1000) * time.Millisecond),
		Steps:              []core.RunStep{{Index: 0, Argv: []string{"/bin/analyse"}, ExitCode: exit, Start: created.Add(time.Millisecond), End: created.Add(500 * time.Millisecond)}},
		Inputs:             []core.FileRecord{{Name: "data", Path: "table.csv", Size: 1000, SHA256: Hex64(fmt.Sprint("input", i%7))}},
	}
	if status == core.RunFailed {
		r.Reason = "exit status " + fmt.Sprint(exit)
	}
	for j := range outputs {
		r.Outputs = append(r.Outputs, core.FileRecord{Name: "/safe_outputs", Path: fmt.Sprintf("out/%05d.txt", j), Size: int64(j), SHA256: Hex64(fmt.Sprint("output", i, j))})
	}
	return r
}

// InsertRuns writes runs with their steps and manifests in one
// transaction, as rows; it does not go through CreateRun and FinishRun.
func InsertRuns(ctx context.Context, db *sql.DB, runs []core.Run) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	runSt, err := tx.PrepareContext(ctx, `INSERT INTO runs (id, repo, path, commit_hash, runfile_blob, image_ref, image_digest, index_digest,
		config_digest, approved, args, env, labels, argv, user, workdir, mounts, limits, runtime, runtime_version, weaker_sandbox,
		executor, slurm_job_id, slurm_array_task, slurm_node, slurm_partition, hostname, environment_sha256, system_kernel_sha256,
		drift, status, exit_code, reason, created_at, started_at, ended_at, reproduce_of, verdict)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	stepSt, err := tx.PrepareContext(ctx, `INSERT INTO run_steps (run_id, idx, argv, exit_code, started_at, ended_at) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	fileSt, err := tx.PrepareContext(ctx, `INSERT INTO run_files (run_id, kind, name, path, size, sha256, link) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	for _, r := range runs {
		var (
			slurmJob, slurmNode, slurmPart string
			slurmTask, exit                any
		)
		if r.Slurm != nil {
			slurmJob, slurmNode, slurmPart = r.Slurm.JobID, r.Slurm.Node, r.Slurm.Partition
			if r.Slurm.ArrayTask != nil {
				slurmTask = *r.Slurm.ArrayTask
			}
		}
		if r.ExitCode != nil {
			exit = *r.ExitCode
		}
		_, err := runSt.ExecContext(ctx, r.ID, r.Repo, r.Path, r.Commit, r.RunfileBlob, r.ImageRef, r.ImageDigest, r.IndexDigest,
			r.ConfigDigest, r.Approved, js(r.Args), js(r.Env), js(r.Labels), js(r.Argv), r.User, r.Workdir, js(r.Mounts), js(r.Limits),
			r.Runtime, r.RuntimeVersion, r.WeakerSandbox, r.Executor, slurmJob, slurmTask, slurmNode, slurmPart, r.Hostname,
			r.EnvironmentSHA256, r.SystemKernelSHA256, r.Drift, string(r.Status), exit, r.Reason, tt(r.Created), tt(r.Started),
			tt(r.Ended), r.ReproduceOf, r.Verdict)
		if err != nil {
			return fmt.Errorf("insert run %s: %w", r.ID, err)
		}
		for _, s := range r.Steps {
			if _, err := stepSt.ExecContext(ctx, r.ID, s.Index, js(s.Argv), s.ExitCode, tt(s.Start), tt(s.End)); err != nil {
				return fmt.Errorf("insert step %d of run %s: %w", s.Index, r.ID, err)
			}
		}
		for kind, files := range map[string][]core.FileRecord{core.MountInput: r.Inputs, core.MountOutput: r.Outputs} {
			for _, f := range files {
				if _, err := fileSt.ExecContext(ctx, r.ID, kind, f.Name, f.Path, f.Size, f.SHA256, f.Link); err != nil {
					return fmt.Errorf("insert %s file %s of run %s: %w", kind, f.Path, r.ID, err)
				}
			}
		}
	}
	return tx.Commit()
}

// InsertSynthetic writes synthetic runs first..first+n-1, in the shuffled
// order of Shuffled, each with outputs output files. bare leaves out steps and manifests, which listings
// do not read, and then generates the rows inside SQLite in one statement:
// 100,000 runs take seconds, not minutes, even under the race detector.
func InsertSynthetic(ctx context.Context, db *sql.DB, first, n, outputs int, bare bool) error {
	if bare {
		return insertBare(ctx, db, first, n)
	}
	const batch = 5000
	order := Shuffled(first, n)
	for len(order) > 0 {
		k := min(batch, len(order))
		runs := make([]core.Run, 0, k)
		for _, j := range order[:k] {
			runs = append(runs, SyntheticRun(j, outputs))
		}
		if err := InsertRuns(ctx, db, runs); err != nil {
			return err
		}
		order = order[k:]
	}
	return nil
}

// ShuffleSeed seeds the order in which InsertSynthetic writes runs.
const ShuffleSeed = 20260101

// Shuffled is first..first+n-1 in the order InsertSynthetic writes the
// runs: a deterministic shuffle, so that a listing that returns rows in
// insertion (rowid) order instead of time order is caught.
func Shuffled(first, n int) []int {
	order := make([]int, n)
	for k := range order {
		order[k] = first + k
	}
	rng := rand.New(rand.NewPCG(ShuffleSeed, uint64(n)))
	rng.Shuffle(n, func(a, b int) { order[a], order[b] = order[b], order[a] })
	return order
}

// insertBare is SyntheticRun without steps and manifests, in SQL.
func insertBare(ctx context.Context, db *sql.DB, first, n int) error {
	r0 := SyntheticRun(0, 0)
	var commits, blobs, images, configs []any
	for k := range 10 {
		r := SyntheticRun(k, 0)
		commits, blobs = append(commits, r.Commit), append(blobs, r.RunfileBlob)
		if k < 5 {
			images, configs = append(images, r.ImageDigest), append(configs, r.ConfigDigest)
		}
	}
	pick := func(col string, m int) string {
		s := "CASE i % " + fmt.Sprint(m)
		for k := range m {
			s += fmt.Sprintf(" WHEN %d THEN ?", k)
		}
		return s + " END AS " + col
	}
	// Times: Base + i s + 123456789 ns, started 1 ms later, ended
	// 500 + i%1000 ms after creation, written as the store writes them.
	ts := func(extraNS string) string {
		ns := "(i * 1000000000 + 123456789 + " + extraNS + ")"
		return "strftime('%Y-%m-%dT%H:%M:%S', " + fmt.Sprint(Base.Unix()) + " + " + ns + " / 1000000000, 'unixepoch') || '.' || printf('%09d', " + ns + " % 1000000000) || 'Z'"
	}
	q := `INSERT INTO runs (id, repo, path, commit_hash, runfile_blob, image_ref, image_digest, config_digest, approved,
		args, env, labels, argv, user, workdir, mounts, limits, runtime, runtime_version, executor, hostname,
		status, exit_code, reason, created_at, started_at, ended_at)
	WITH seq(i) AS (SELECT value FROM json_each(?))
	SELECT printf('%08x%024x', (i * 2654435761) & 4294967295, i), 'default', 'Runfile', c, b, ?, img, cfg, 1,
		'{"N":"' || i || '"}', ?, ?, '["/bin/analyse","--n","' || i || '"]', ?, ?, ?, ?, ?, ?, ?, 'node' || (i % 4),
		CASE i % 3 WHEN 0 THEN 'succeeded' ELSE 'failed' END, i % 3, CASE i % 3 WHEN 0 THEN '' ELSE 'exit status ' || (i % 3) END,
		` + ts("0") + `, ` + ts("1000000") + `, ` + ts("(500 + i % 1000) * 1000000") + `
	FROM (SELECT i, ` + pick("c", 10) + `, ` + pick("b", 10) + `, ` + pick("img", 5) + `, ` + pick("cfg", 5) + ` FROM seq)`
	// Placeholders in the statement's text order: the run numbers in
	// the order to write them (json_each keeps array order), the constant
	// columns, then the CASE values.
	args := []any{js(Shuffled(first, n)), r0.ImageRef, js(r0.Env), js(r0.Labels), r0.User, r0.Workdir, js(r0.Mounts), js(r0.Limits),
		r0.Runtime, r0.RuntimeVersion, r0.Executor}
	args = append(args, commits...)
	args = append(args, blobs...)
	args = append(args, images...)
	args = append(args, configs...)
	return execWithoutIndexes(ctx, db, "runs", q, args...)
}

// execWithoutIndexes runs q with table's secondary indexes dropped, and
// builds them again after, in one transaction: sorting once is much
// cheaper than 100,000 random index inserts.
func execWithoutIndexes(ctx context.Context, db *sql.DB, table, q string, args ...any) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL`, table)
	if err != nil {
		return err
	}
	var names, defs []string
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			rows.Close()
			return err
		}
		names, defs = append(names, name), append(defs, def)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, name := range names {
		if _, err := tx.ExecContext(ctx, `DROP INDEX "`+name+`"`); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return err
	}
	for _, def := range defs {
		if _, err := tx.ExecContext(ctx, def); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// tt formats like the store: RFC 3339 with nanoseconds, UTC; "" for zero.
func tt(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000000Z07:00") // as the store keeps times
}
