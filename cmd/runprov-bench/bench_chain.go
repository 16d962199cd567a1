package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/drivers/sqlite/sqlitetest"
)

var chainBench = benchmark{
	name: "chain",
	desc: "the hash chain: built at upgrade and checked by fsck over 100,000 runs (steps and files); the cost it adds to a run write",
	run:  benchChain,
}

func benchChain(ctx context.Context, env *benchEnv) error {
	const n = 100_000
	store := filepath.Join(env.dir, "store")
	// Rows written at the schema before the chain, so that opening the
	// store builds the chain as an upgrade does.
	old, err := sqlite.InitAtVersion(ctx, store, nil, 6)
	if err != nil {
		return err
	}
	d, err := timeIt(func() error { return sqlitetest.InsertSynthetic(ctx, old.DB(), 0, n, 2, false) })
	old.Close()
	if err != nil {
		return err
	}
	fmt.Fprintf(env.out, "  %d synthetic runs (1 step, 1 input, 2 outputs each) stored in %s\n", n, d.Round(1e6))
	var st *sqlite.Store
	d, err = timeIt(func() (err error) { st, err = sqlite.Open(ctx, store, sqlite.Options{}); return err })
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(env.out, "  upgrade: chain of %d runs built in %s\n", n, d.Round(1e6))

	var check sample
	for range env.reps(5) {
		var problems int
		d, err := timeIt(func() error {
			return sqlite.ChainChecker{Store: st}.Check(ctx, func(core.Problem) { problems++ })
		})
		if err != nil {
			return err
		}
		if problems > 0 {
			return fmt.Errorf("chain check found %d problem(s) on an untouched store", problems)
		}
		check = append(check, d)
	}
	env.row("chain check, 100,000 runs (in-process)", check)
	var fsck sample
	for range env.reps(3) {
		d, err := timeIt(func() error {
			_, err := env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "fsck")
			return err
		})
		if err != nil {
			return err
		}
		fsck = append(fsck, d)
	}
	env.row("runprov fsck, 100,000 runs (every checker)", fsck)
	verdict := "missed"
	if check.median().Seconds() < 2 {
		verdict = "met"
	}
	fmt.Fprintf(env.out, "  target: chain check under 2 s (%s)\n", verdict)
	return benchChainWrite(ctx, env, st, n)
}

// benchChainWrite times FinishRun of a run with 10 outputs, to a final
// status (which appends to the chain) and to running (the same writes,
// no append), alternately, on the 100,000-run store.
func benchChainWrite(ctx context.Context, env *benchEnv, st *sqlite.Store, first int) error {
	var with, without sample
	for i := range env.reps(200) {
		r := sqlitetest.SyntheticRun(first+i, 10)
		final := r.Status
		r.Status = core.RunRunning
		if err := st.CreateRun(ctx, &r); err != nil {
			return err
		}
		for _, chained := range []bool{i%2 == 0, i%2 != 0} {
			r.Status = core.RunRunning
			if chained {
				r.Status = final
			}
			d, err := timeIt(func() error { return st.FinishRun(ctx, &r) })
			if err != nil {
				return err
			}
			if chained {
				with = append(with, d)
			} else {
				without = append(without, d)
			}
		}
	}
	env.row("FinishRun, 10 outputs, with chain append", with)
	env.row("FinishRun, 10 outputs, no append (baseline)", without)
	fmt.Fprintf(env.out, "  %-44s %s\n", "added per run write (difference of medians)", (with.median() - without.median()).Round(1e3))
	return nil
}
