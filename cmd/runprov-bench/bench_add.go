package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite"
)

var addLatency = benchmark{
	name: "add",
	desc: "`runprov add` latency as one repository grows to 1000 commits: the 10th vs the 1000th add, and the store size",
	run:  benchAdd,
}

// benchRunfile is a Runfile that differs in one comment per commit.
func benchRunfile(i int) []byte {
	return fmt.Appendf(nil, `FROM docker.io/library/busybox@sha256:%064x
USER 1000:1000
INPUT data /safe_data
OUTPUT /safe_outputs
# revision %d
CMD ["/bin/sh", "-c", "wc -l /safe_data/* > /safe_outputs/count"]
`, 1, i)
}

func benchAdd(ctx context.Context, env *benchEnv) error {
	store := filepath.Join(env.dir, "store")
	if _, err := env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "init"); err != nil {
		return err
	}
	file := filepath.Join(env.dir, "Runfile")
	// Adds 1..total are timed; the window around the 10th and the last
	// 10 are reported so one slow fsync does not decide the result.
	const total = 1000
	var early, late sample
	for i := 1; i <= total; i++ {
		if err := os.WriteFile(file, benchRunfile(i), 0o644); err != nil {
			return err
		}
		d, err := timeIt(func() error {
			_, err := env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "add", "-m", fmt.Sprintf("rev %d", i), file)
			return err
		})
		if err != nil {
			return err
		}
		switch {
		case i >= 6 && i <= 15:
			early = append(early, d)
		case i > total-10:
			late = append(late, d)
		}
		if i%100 == 0 {
			fmt.Fprintf(env.out, "  ... %d adds\n", i)
		}
	}
	// The baseline: the same process start and store open with no commit.
	var version sample
	for range 10 {
		d, err := timeIt(func() error {
			_, err := env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "log", "-n", "1")
			return err
		})
		if err != nil {
			return err
		}
		version = append(version, d)
	}
	env.row("add, commits 6-15 (around the 10th)", early)
	env.row("add, commits 991-1000", late)
	env.row("baseline: runprov log -n 1 (start + open)", version)
	env.ratio("1000th / 10th", late, early)
	size, err := dirSize(store)
	if err != nil {
		return err
	}
	var tarball int64
	db, err := sql.Open("sqlite", "file:"+filepath.Join(store, "runprov.db")+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, "SELECT tarball_size FROM repos WHERE name = 'default'").Scan(&tarball); err != nil {
		return err
	}
	fmt.Fprintf(env.out, "  store size after %d commits: %.1f MiB (tarball %.1f KiB)\n", total, float64(size)/(1<<20), float64(tarball)/1024)
	return nil
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

var queryCommits = benchmark{
	name: "query",
	desc: "`runprov query` over a commits table of 100,000 rows: a filtered query, vs sqlite3-equivalent direct database/sql",
	run:  benchQuery,
}

func benchQuery(ctx context.Context, env *benchEnv) error {
	store := filepath.Join(env.dir, "store")
	if _, err := env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "init"); err != nil {
		return err
	}
	// One real add gives a real repo row; the other rows are index rows
	// written directly, which is what `query` reads.
	file := filepath.Join(env.dir, "Runfile")
	if err := os.WriteFile(file, benchRunfile(0), 0o644); err != nil {
		return err
	}
	if _, err := env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "add", file); err != nil {
		return err
	}
	dbPath := filepath.Join(store, "runprov.db")
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(60000)")
	if err != nil {
		return err
	}
	defer db.Close()
	const rows = 100_000
	if err := fillCommits(ctx, db, rows); err != nil {
		return err
	}
	const q = "SELECT hash, path, committed_at FROM commits WHERE path LIKE 'analysis-7%' AND image_digest = 'sha256:" + "0000000000000000000000000000000000000000000000000000000000000007" + "' ORDER BY seq DESC LIMIT 50"
	reps := env.reps(15)
	var cli, direct sample
	for range reps {
		d, err := timeIt(func() error {
			out, err := env.cmd(ctx, nil, env.runprov, "--store", store, "--json", "query", q)
			if err == nil && !strings.Contains(out, "analysis-7") {
				err = fmt.Errorf("query returned no rows: %s", out)
			}
			return err
		})
		if err != nil {
			return err
		}
		cli = append(cli, d)
		d, err = timeIt(func() error {
			r, err := db.QueryContext(ctx, q)
			if err != nil {
				return err
			}
			defer r.Close()
			for r.Next() {
			}
			return r.Err()
		})
		if err != nil {
			return err
		}
		direct = append(direct, d)
	}
	var version sample
	for range reps {
		d, err := timeIt(func() error {
			_, err := env.cmd(ctx, nil, env.runprov, "version")
			return err
		})
		if err != nil {
			return err
		}
		version = append(version, d)
	}
	env.row(fmt.Sprintf("runprov query, %d rows, filtered", rows), cli)
	env.row("the same SQL in-process (database/sql)", direct)
	env.row("baseline: runprov version (process start)", version)
	return nil
}

// fillCommits adds n synthetic index rows to the default repo.
func fillCommits(ctx context.Context, db *sql.DB, n int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var repoID int64
	if err := tx.QueryRowContext(ctx, "SELECT id FROM repos WHERE name = 'default'").Scan(&repoID); err != nil {
		return err
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO commits (repo_id, hash, path, blob, image_ref, image_digest, message, author, committed_at, seq)
		VALUES (?, ?, ?, ?, 'docker.io/library/busybox', ?, 'synthetic', 'bench <bench@localhost>', ?, ?)`)
	if err != nil {
		return err
	}
	when := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 1; i <= n; i++ {
		_, err := st.ExecContext(ctx, repoID, fmt.Sprintf("%040x", i), fmt.Sprintf("analysis-%d/Runfile", i), fmt.Sprintf("%040x", i),
			fmt.Sprintf("sha256:%064x", i%100), when.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano), i+1)
		if err != nil {
			return err
		}
	}
	return tx.Commit()
}
