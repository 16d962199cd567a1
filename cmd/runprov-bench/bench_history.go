package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/drivers/sqlite/sqlitetest"
	"github.com/runprov/runprov/plugins/history"
)

var historyBench = benchmark{
	name: "history",
	desc: "`runs --limit 50` and `show` on a store of 100,000 runs, `diff` of two runs with 10,000 outputs each; vs `runprov version` and the same work in-process",
	run:  benchHistory,
}

func benchHistory(ctx context.Context, env *benchEnv) error {
	store := filepath.Join(env.dir, "store")
	st, shown, a, b, err := historyStore(ctx, env, store)
	if err != nil {
		return err
	}
	defer st.Close()
	reps := env.reps(15)
	rp, diffCmd := storeCommands(ctx, env, store)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(store, "runprov.db")+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	query := func(q string, args ...any) func() error {
		return func() error {
			rows, err := db.QueryContext(ctx, q, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
			}
			return rows.Err()
		}
	}
	inProcDiff := func() error {
		ra, err := st.Run(ctx, a.ID)
		if err != nil {
			return err
		}
		rb, err := st.Run(ctx, b.ID)
		if err != nil {
			return err
		}
		if history.Compare(history.Side{Run: ra}, history.Side{Run: rb}).Equivalent {
			return fmt.Errorf("runs reported equivalent")
		}
		return nil
	}
	measures := []struct {
		label string
		fn    func() error
	}{
		{"runprov runs --limit 50", rp("runs", "--limit", "50")},
		{"runprov --json runs --limit 50", rp("--json", "runs", "--limit", "50")},
		{"runprov show RUN (100 outputs)", rp("show", shown.ID[:12])},
		{"runprov diff A B (10,000 outputs each)", diffCmd("diff", a.ID[:12], b.ID[:12])},
		{"runprov --json diff A B", diffCmd("--json", "diff", a.ID[:12], b.ID[:12])},
		{"baseline: runprov version (process start)", rp("version")},
		{"in-process SQL: newest 50 runs", query(`SELECT * FROM runs ORDER BY created_at DESC, id DESC LIMIT 50`)},
		{"in-process SQL: one run + its files", func() error {
			if err := query(`SELECT * FROM runs WHERE id >= ? AND id < ? LIMIT 11`, shown.ID[:12], shown.ID[:12]+"\xff")(); err != nil {
				return err
			}
			return query(`SELECT * FROM run_files WHERE run_id = ?`, shown.ID)()
		}},
		{"in-process: load two runs + history.Compare", inProcDiff},
	}
	samples := make([]sample, len(measures))
	for range reps {
		for i, m := range measures {
			d, err := timeIt(m.fn)
			if err != nil {
				return fmt.Errorf("%s: %w", m.label, err)
			}
			samples[i] = append(samples[i], d)
		}
	}
	for i, m := range measures {
		env.row(m.label, samples[i])
	}
	version := samples[5]
	env.ratio("runs --limit 50 / version", samples[0], version)
	env.ratio("show / version", samples[2], version)
	env.ratio("diff / version", samples[3], version)
	fmt.Fprintf(env.out, "  target: runs and show under 100 ms for the whole process (%s)\n", strings.Join([]string{
		verdictMs("runs", samples[0]), verdictMs("show", samples[2])}, ", "))
	return nil
}

// storeCommands time runprov commands on store: rp any command, diffCmd a
// diff of runs that differ (which exits 1).
func storeCommands(ctx context.Context, env *benchEnv, store string) (rp, diffCmd func(args ...string) func() error) {
	rp = func(args ...string) func() error {
		return func() error {
			_, err := env.cmd(ctx, nil, env.runprov, append([]string{"--store", store}, args...)...)
			return err
		}
	}
	// diff exits 1 when the runs differ, as here.
	diffCmd = func(args ...string) func() error {
		return func() error {
			c := exec.CommandContext(ctx, env.runprov, append([]string{"--store", store}, args...)...)
			err := c.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() == 1 {
				return nil
			}
			if err == nil {
				return fmt.Errorf("diff of two different runs exited 0")
			}
			return err
		}
	}
	return rp, diffCmd
}

func verdictMs(name string, s sample) string {
	if s.median().Milliseconds() < 100 {
		return name + " met"
	}
	return name + " missed"
}

// historyStore fills a store with 100,000 synthetic runs, one run with
// steps and 100 outputs to show, and two runs of 10,000 outputs each, 100 of
// them changed, to diff.
func historyStore(ctx context.Context, env *benchEnv, store string) (st *sqlite.Store, shown, a, b core.Run, err error) {
	if _, err := env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "init"); err != nil {
		return nil, core.Run{}, core.Run{}, core.Run{}, err
	}
	const n = 100_000
	st, err = sqlite.Open(ctx, store, sqlite.Options{})
	if err != nil {
		return nil, core.Run{}, core.Run{}, core.Run{}, err
	}
	d, err := timeIt(func() error { return sqlitetest.InsertSynthetic(ctx, st.DB(), 0, n, 0, true) })
	if err != nil {
		st.Close()
		return nil, core.Run{}, core.Run{}, core.Run{}, err
	}
	fmt.Fprintf(env.out, "  %d synthetic runs stored in %s\n", n, d.Round(1e6))
	// The run to show has steps and 100 outputs; the two to diff 10,000
	// outputs each, 100 of them changed.
	shown = sqlitetest.SyntheticRun(n, 100)
	a, b = sqlitetest.SyntheticRun(n+1, 10_000), sqlitetest.SyntheticRun(n+2, 0)
	b.Outputs = slices.Clone(a.Outputs)
	for i := range 100 {
		b.Outputs[i*97].SHA256 = sqlitetest.Hex64(fmt.Sprint("changed", i))
	}
	if err := sqlitetest.InsertRuns(ctx, st.DB(), []core.Run{shown, a, b}); err != nil {
		st.Close()
		return nil, core.Run{}, core.Run{}, core.Run{}, err
	}
	return st, shown, a, b, nil
}
