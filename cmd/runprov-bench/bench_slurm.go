package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/runprov/runprov/core"
	slurmdrv "github.com/runprov/runprov/drivers/slurm"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/plugins/slurm"
	"github.com/runprov/runprov/plugins/slurm/recordtest"
)

var slurmBench = benchmark{
	name: "slurm",
	desc: "per-job time of runprov run --executor slurm --wait vs a bare sbatch of runc run of the same config.json (submit to result); submitting a 200-task array vs a bare sbatch --array; ingesting 1,000 finished job records",
	run:  benchSlurm,
}

// slurmPollEvery is how often the bare baseline asks squeue whether its job
// ended; runprov --wait polls every 200 ms too (cmd/runprov slurmPoll).
const slurmPollEvery = 200 * time.Millisecond

func benchSlurm(ctx context.Context, env *benchEnv) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (runc with a user namespace)")
	}
	if _, err := exec.LookPath("sbatch"); err != nil {
		return fmt.Errorf("no sbatch: run make slurm-up")
	}
	store, digest, commit, err := slurmBenchStore(ctx, env)
	if err != nil {
		return err
	}
	bare, cleanup, err := bareSlurmJob(ctx, env, store, digest)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := benchSlurmJobs(ctx, env, store, commit, bare); err != nil {
		return err
	}
	if err := benchSlurmArray(ctx, env, store, commit); err != nil {
		return err
	}
	return benchIngest(ctx, env)
}

func benchSlurmJobs(ctx context.Context, env *benchEnv, store, commit string, bare func() error) error {
	reps := env.reps(20)
	rp := func(args ...string) (string, error) {
		return env.cmd(ctx, nil, env.runprov, append([]string{"--store", store, "-q"}, args...)...)
	}
	var bareS, submitS, waitS sample
	for range reps {
		d, err := timeIt(bare)
		if err != nil {
			return err
		}
		bareS = append(bareS, d)
		d, err = timeIt(func() error { _, err := rp("run", commit, "--executor", "slurm", "--wait", "--no-input"); return err })
		if err != nil {
			return err
		}
		waitS = append(waitS, d)
		// Submission alone: prepare, script, sbatch; the job runs on.
		d, err = timeIt(func() error { _, err := rp("run", commit, "--executor", "slurm", "--no-input"); return err })
		if err != nil {
			return err
		}
		submitS = append(submitS, d)
		// Its job ends before the next measurement starts.
		settleSlurmRuns(rp)
	}
	env.row("sbatch of runc run (submit to COMPLETED)", bareS)
	env.row("runprov run --executor slurm --wait", waitS)
	env.row("runprov run --executor slurm (submit only)", submitS)
	fmt.Fprintf(env.out, "  %-44s %s\n", "per-job overhead of runprov (median diff)", (waitS.median() - bareS.median()).Round(time.Millisecond))
	env.ratio("runprov --wait / bare sbatch", waitS, bareS)
	return nil
}

// settleSlurmRuns waits until the store has no queued or running run
// (each runprov command refreshes them), for at most 20 s.
func settleSlurmRuns(rp func(args ...string) (string, error)) {
	for range 100 {
		if out, _ := rp("query", "--csv", "SELECT count(*) FROM runs WHERE status IN ('queued', 'running')"); strings.HasSuffix(strings.TrimSpace(out), "\n0") {
			return
		}
		time.Sleep(slurmPollEvery)
	}
}

// slurmArrayTasks is the array the submission is timed with.
const slurmArrayTasks = 200

// benchSlurmArray times submitting an array of slurmArrayTasks: runprov
// prepares a run per task and submits them with one sbatch; the baseline
// is sbatch --array of the bare runc script. Both are submitted held
// (--hold) and cancelled, so that the cluster is idle for the next one:
// what is timed is submission alone.
func benchSlurmArray(ctx context.Context, env *benchEnv, store, commit string) error {
	reps := env.reps(5)
	rp := func(args ...string) (string, error) {
		return env.cmd(ctx, nil, env.runprov, append([]string{"--store", store, "-q"}, args...)...)
	}
	client := &slurmdrv.Client{}
	script := filepath.Join(env.dir, "bare.sh")
	var bareS, rpS sample
	for range reps {
		var id string
		d, err := timeIt(func() (err error) {
			id, err = client.Submit(ctx, script, "--hold", fmt.Sprintf("--array=0-%d", slurmArrayTasks-1))
			return err
		})
		if err != nil {
			return err
		}
		bareS = append(bareS, d)
		if err := client.Cancel(ctx, id); err != nil {
			return err
		}
		var out string
		d, err = timeIt(func() (err error) {
			out, err = env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "--json", "run", commit, "--executor", "slurm", "--no-input",
				"--array", fmt.Sprint(slurmArrayTasks), "--sbatch-arg=--hold")
			return err
		})
		if err != nil {
			return err
		}
		rpS = append(rpS, d)
		var runs []core.Run
		if err := json.Unmarshal([]byte(out), &runs); err != nil || len(runs) != slurmArrayTasks || runs[0].Slurm == nil {
			return fmt.Errorf("runprov run --array %d printed %d runs (%v)", slurmArrayTasks, len(runs), err)
		}
		if err := client.Cancel(ctx, runs[0].Slurm.JobID); err != nil {
			return err
		}
		// Its cancelled runs are marked aborted before the next submission.
		settleSlurmRuns(rp)
	}
	env.row(fmt.Sprintf("sbatch --array of %d tasks (submit)", slurmArrayTasks), bareS)
	env.row(fmt.Sprintf("runprov run --array %d (submit)", slurmArrayTasks), rpS)
	env.ratio("runprov array submit / bare sbatch --array", rpS, bareS)
	return nil
}

// slurmBenchStore makes a store with the busybox image and a Runfile of
// /bin/true that ran once (its rootfs unpacked, a config.json written).
func slurmBenchStore(ctx context.Context, env *benchEnv) (store, digest, commit string, err error) {
	if store, commit, digest, err = trueRunStore(ctx, env, ""); err != nil {
		return "", "", "", err
	}
	_, err = env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "run", commit, "--no-input")
	return store, digest, commit, err
}

// bareSlurmJob is the baseline: sbatch of a script that runs runc on the
// same spec in a prepared bundle, done when squeue says the job completed.
func bareSlurmJob(ctx context.Context, env *benchEnv, store, digest string) (func() error, func(), error) {
	bundleDir, err := os.MkdirTemp("/run", "runprov-bench-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(bundleDir) }
	os.Chmod(bundleDir, 0o711)
	bundle, err := bareBundle(store, digest, bundleDir)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	script := filepath.Join(env.dir, "bare.sh")
	os.WriteFile(script, []byte(fmt.Sprintf("#!/bin/sh\n#SBATCH --output=/dev/null\nexec runc --root %s run --bundle %s bench-$SLURM_JOB_ID\n",
		slurmdrv.Quote(filepath.Join(env.dir, "runc-state")), slurmdrv.Quote(bundle))), 0o755)
	client := &slurmdrv.Client{}
	bare := func() error {
		id, err := client.Submit(ctx, script)
		if err != nil {
			return err
		}
		for {
			jobs, err := client.Jobs(ctx, []string{id})
			if err != nil {
				return err
			}
			if j, ok := jobs[id]; ok && j.Finished() {
				if j.State != "COMPLETED" {
					return fmt.Errorf("bare job %s: %s", id, j.Describe())
				}
				return nil
			}
			time.Sleep(slurmPollEvery)
		}
	}
	return bare, cleanup, nil
}

// benchIngest: a store with 1,000 queued Slurm runs whose jobs have all
// written their record (10 output files each); the time Tracker.Ingest
// takes to store them, next to storing the same runs with FinishRun from
// memory (no files), and `runprov runs` as the first command after they
// landed vs once they are in.
func benchIngest(ctx context.Context, env *benchEnv) error {
	const n = 1000
	reps := env.reps(3)
	var ingestS, finishS, firstS, nextS, tableS sample
	for rep := range reps {
		d, recs, err := timeIngest(ctx, filepath.Join(env.dir, fmt.Sprintf("ingest-%d", rep)), n)
		if err != nil {
			return err
		}
		ingestS = append(ingestS, d)
		// The same runs stored from memory: what ingesting adds is reading
		// and checking the files and the snapshot rows.
		if d, err = timeFinish(ctx, filepath.Join(env.dir, fmt.Sprintf("finish-%d", rep)), n, recs); err != nil {
			return err
		}
		finishS = append(finishS, d)
		// The CLI: the first command after the records landed stores them.
		first, next, table, err := timeRunsAfterRecords(ctx, env, filepath.Join(env.dir, fmt.Sprintf("cli-%d", rep)), n)
		if err != nil {
			return err
		}
		firstS, nextS, tableS = append(firstS, first), append(nextS, next), append(tableS, table)
	}
	env.row(fmt.Sprintf("ingest %d records (Tracker.Ingest)", n), ingestS)
	env.row(fmt.Sprintf("FinishRun x %d from memory (baseline)", n), finishS)
	env.ratio("ingest / FinishRun from memory", ingestS, finishS)
	env.row(fmt.Sprintf("runprov runs, first after %d records landed", n), firstS)
	env.row(fmt.Sprintf("runprov runs, %d runs, nothing to ingest", n), nextS)
	env.row(fmt.Sprintf("runprov runs (table), %d runs, nothing to ingest", n), tableS)
	return nil
}

// timeIngest times Tracker.Ingest of n record files in a new store at dir;
// it returns the records.
func timeIngest(ctx context.Context, dir string, n int) (time.Duration, []*slurm.Record, error) {
	st, _, err := sqlite.Init(ctx, dir, nil, sqlite.Options{})
	if err != nil {
		return 0, nil, err
	}
	defer st.Close()
	runs, err := recordtest.Setup(ctx, st, st.Layout(), n, "1000")
	if err != nil {
		return 0, nil, err
	}
	recs := make([]*slurm.Record, n)
	for i, q := range runs {
		recs[i] = recordtest.Finished(q, "node1", 10)
		if err := slurm.WriteRecord(st.Layout().Run(q.ID), recs[i]); err != nil {
			return 0, nil, err
		}
	}
	tr := &slurm.Tracker{Store: st, Layout: st.Layout()}
	var got int
	d, err := timeIt(func() error { got, err = tr.Ingest(ctx); return err })
	if err != nil || got != n {
		return 0, nil, fmt.Errorf("ingest: %d of %d: %v", got, n, err)
	}
	return d, recs, nil
}

// timeFinish times storing recs with FinishRun, from memory, in a new
// store at dir.
func timeFinish(ctx context.Context, dir string, n int, recs []*slurm.Record) (time.Duration, error) {
	st, _, err := sqlite.Init(ctx, dir, nil, sqlite.Options{})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	if _, err := recordtest.Setup(ctx, st, st.Layout(), n, "1000"); err != nil {
		return 0, err
	}
	return timeIt(func() error {
		for _, rec := range recs {
			r := rec.Run
			if err := st.FinishRun(ctx, &r); err != nil {
				return err
			}
		}
		return nil
	})
}

// timeRunsAfterRecords times runprov -q runs as the first command after n
// records landed in a new store at dir (it ingests them), then again, then
// runprov runs printing its table.
func timeRunsAfterRecords(ctx context.Context, env *benchEnv, dir string, n int) (first, next, table time.Duration, err error) {
	st, _, err := sqlite.Init(ctx, dir, nil, sqlite.Options{})
	if err != nil {
		return 0, 0, 0, err
	}
	runs, err := recordtest.Setup(ctx, st, st.Layout(), n, "987654321")
	if err == nil {
		for _, q := range runs {
			if err = slurm.WriteRecord(st.Layout().Run(q.ID), recordtest.Finished(q, "node1", 10)); err != nil {
				break
			}
		}
	}
	st.Close()
	if err != nil {
		return 0, 0, 0, err
	}
	list := func(args ...string) func() error {
		return func() error {
			_, err := env.cmd(ctx, nil, env.runprov, append([]string{"--store", dir}, args...)...)
			return err
		}
	}
	if first, err = timeIt(list("-q", "runs", "--json")); err != nil {
		return 0, 0, 0, err
	}
	if next, err = timeIt(list("-q", "runs", "--json")); err != nil {
		return 0, 0, 0, err
	}
	if table, err = timeIt(list("runs")); err != nil {
		return 0, 0, 0, err
	}
	return first, next, table, checkIngested(ctx, dir, n)
}

func checkIngested(ctx context.Context, dir string, n int) error {
	st, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	runs, err := st.Runs(ctx, core.RunFilter{Status: core.RunSucceeded})
	if err != nil {
		return err
	}
	if len(runs) != n {
		return fmt.Errorf("runprov runs stored %d of %d records", len(runs), n)
	}
	return nil
}
