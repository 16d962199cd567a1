package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/drivers/sqlite/sqlitetest"
)

var lineageBench = benchmark{
	name: "lineage",
	desc: "`trace` on a store of 100,000 runs and 1,000,000 file rows (chains of runs by content, one config every run reads); `report` of 1,000 runs; vs `runprov version`",
	run:  benchLineage,
}

func benchLineage(ctx context.Context, env *benchEnv) error {
	store := filepath.Join(env.dir, "store")
	if _, err := env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "init"); err != nil {
		return err
	}
	const n = 100_000
	st, err := sqlite.Open(ctx, store, sqlite.Options{})
	if err != nil {
		return err
	}
	d, err := timeIt(func() error {
		if err := sqlitetest.InsertSynthetic(ctx, st.DB(), 0, n, 0, true); err != nil {
			return err
		}
		return sqlitetest.InsertLineageFiles(ctx, st.DB(), 0, n)
	})
	st.Close()
	if err != nil {
		return err
	}
	fmt.Fprintf(env.out, "  %d synthetic runs, %d file rows stored in %s\n", n, n*(sqlitetest.LineageOutputs+2), d.Round(1e6))

	rp := func(args ...string) func() error {
		return func() error {
			_, err := env.cmd(ctx, nil, env.runprov, append([]string{"--store", store, "-q"}, args...)...)
			return err
		}
	}
	report := filepath.Join(env.dir, "report.html")
	measures := []struct {
		label string
		fn    func() error
		reps  int
	}{
		{"runprov trace OUTPUT (up, depth 10)", rp("trace", "sha256:"+sqlitetest.OutputSHA(n-1, 0)), 15},
		{"runprov --json trace OUTPUT", rp("--json", "trace", "sha256:"+sqlitetest.OutputSHA(n-1, 0)), 15},
		{"runprov trace --down RAW (depth 10, 8 outputs a run)", rp("trace", "--down", "sha256:"+sqlitetest.RawSHA(7)), 15},
		{"runprov trace --down CONFIG (100,000 users, 20 followed)", rp("trace", "--down", "sha256:"+sqlitetest.ConfigSHA), 15},
		{"baseline: runprov version (process start)", rp("version"), 15},
		{"runprov report --limit 1000 -o FILE", rp("report", "--limit", "1000", "-o", report), 5},
	}
	samples := make([]sample, len(measures))
	for i, m := range measures {
		for range env.reps(m.reps) {
			d, err := timeIt(m.fn)
			if err != nil {
				return fmt.Errorf("%s: %w", m.label, err)
			}
			samples[i] = append(samples[i], d)
		}
		env.row(m.label, samples[i])
	}
	fi, err := os.Stat(report)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.out, "  report of 1,000 runs: %.2f MB\n", float64(fi.Size())/1e6)
	env.ratio("trace / version", samples[0], samples[4])
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "missed"
	}
	fmt.Fprintf(env.out, "  target: trace under 100 ms for the whole process (%s); report of 1,000 runs under 2 s (%s) and 5 MB (%s)\n",
		verdict(samples[0].median().Milliseconds() < 100), verdict(samples[5].median().Seconds() < 2), verdict(fi.Size() < 5e6))
	return nil
}
