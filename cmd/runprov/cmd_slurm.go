package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/runprov/runprov/core"
	slurmdrv "github.com/runprov/runprov/drivers/slurm"
	"github.com/runprov/runprov/plugins/producer"
	slurmplug "github.com/runprov/runprov/plugins/slurm"
)

// The Slurm executor: `runprov run --executor slurm` prepares the run here,
// submits a batch script that runs `runprov exec-prepared RUN` on the
// allocated node, and returns; the node writes STORE/runs/RUN/record.json
// and any later runprov command stores it (app.syncSlurm).

// slurmBinaryEnv names the runprov binary the batch script runs on the node,
// when it is not at the same path as here.
const slurmBinaryEnv = "RUNPROV_SLURM_BINARY"

// slurmGraceEnv sets how long a Slurm job that ended without a record is
// waited for before its run is marked aborted (a Go duration; default
// plugins/slurm.DefaultGrace): longer on a slow shared file system.
const slurmGraceEnv = "RUNPROV_SLURM_GRACE"

// slurmGrace is the Tracker's grace period from $RUNPROV_SLURM_GRACE; 0
// (the default) when unset or not a duration.
func slurmGrace() time.Duration {
	d, _ := time.ParseDuration(os.Getenv(slurmGraceEnv))
	return d
}

// slurmFlags are run's flags for the Slurm executor.
type slurmFlags struct {
	executor   string
	sbatchArgs []string
	array      string // --array: N, or A-B
	wait       bool

	arrayFirst, arrayTasks int // --array parsed by check
}

func addSlurmFlags(f *pflag.FlagSet, sf *slurmFlags) {
	f.StringVar(&sf.executor, "executor", "local", "who executes the run: local, or slurm (submits a batch job and returns the run id)")
	f.StringArrayVar(&sf.sbatchArgs, "sbatch-arg", nil, "with --executor slurm: pass `ARG` to sbatch, e.g. --sbatch-arg=--partition=long (repeat)")
	f.StringVar(&sf.array, "array", "", "with --executor slurm: run `N` array tasks (0 to N-1), or tasks A-B as sbatch --array=A-B does; each is its own run with SLURM_ARRAY_TASK_ID in its args")
	f.BoolVar(&sf.wait, "wait", false, "with --executor slurm: wait for the runs to end and exit with their status")
}

// check refuses flag combinations that cannot work.
func (sf *slurmFlags) check(opts producer.Options) error {
	switch sf.executor {
	case "local":
		if len(sf.sbatchArgs) > 0 || sf.array != "" || sf.wait {
			return usagef("--sbatch-arg, --array and --wait need --executor slurm")
		}
	case "slurm":
		var err error
		if sf.arrayFirst, sf.arrayTasks, err = parseArray(sf.array); err != nil {
			return err
		}
		if sf.arrayTasks > 0 && opts.OutputsDir != "" {
			return usagef("--outputs with --array: each task needs its own outputs directory; leave out --outputs (task outputs go to STORE/runs/RUN/outputs)")
		}
	default:
		return usagef("--executor %q: want local or slurm", sf.executor)
	}
	return nil
}

// runSlurm prepares the runs (one, or one per array task), submits them as
// one job and prints their ids; with --wait it waits and exits with the
// runs' status. When sbatch is missing or refuses the job, the prepared
// runs are marked aborted (no queued row is left behind) and runprov exits
// 125.
func (a *app) runSlurm(ctx context.Context, opts producer.Options, sf slurmFlags) error {
	client := a.term.slurm
	if err := client.Available(); err != nil {
		return err
	}
	bin := os.Getenv(slurmBinaryEnv)
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the runprov binary for the batch script: %w (set %s)", err, slurmBinaryEnv)
		}
		bin = exe
	}
	jobID, preps, err := a.term.submit.Submit(ctx, opts, slurmplug.SubmitOptions{Array: sf.arrayTasks, ArrayFirst: sf.arrayFirst, SbatchArgs: sf.sbatchArgs, Binary: bin})
	if err != nil {
		return err
	}
	ids := make([]string, len(preps))
	for i, prep := range preps {
		ids[i] = prep.Run.ID
	}
	if !a.quiet {
		if sf.arrayTasks > 0 {
			fmt.Fprintf(a.stderr, "runprov: %d runs queued as slurm array job %s (commit %s)\n", len(ids), jobID, shortHash(preps[0].Run.Commit))
		} else {
			fmt.Fprintf(a.stderr, "runprov: run %s queued as slurm job %s (commit %s)\n", ids[0], jobID, shortHash(preps[0].Run.Commit))
		}
	}
	if !sf.wait {
		if a.json {
			return printRuns(a, preps2runs(preps), sf.arrayTasks > 0)
		}
		for _, id := range ids {
			fmt.Fprintln(a.stdout, id)
		}
		return nil
	}
	runs, err := a.waitSlurm(ctx, client, jobID, ids)
	if err != nil {
		return err
	}
	if a.json {
		if err := printRuns(a, runs, sf.arrayTasks > 0); err != nil {
			return err
		}
	} else {
		for _, r := range runs {
			fmt.Fprintln(a.stdout, r.ID)
		}
	}
	for _, r := range runs {
		if !a.quiet {
			msg := string(r.Status)
			if r.Reason != "" {
				msg += ": " + r.Reason
			}
			fmt.Fprintf(a.stderr, "runprov: run %s on %s %s\n", core.ShortRunID(r.ID), slurmNode(&r), msg)
		}
	}
	// The first run that did not succeed gives the exit status.
	for _, r := range runs {
		if code := runExit(&r); code != 0 {
			return exitStatus{code}
		}
	}
	return nil
}

func preps2runs(preps []*producer.Prepared) []core.Run {
	out := make([]core.Run, len(preps))
	for i, p := range preps {
		out[i] = *p.Run
	}
	return out
}

func printRuns(a *app, runs []core.Run, array bool) error {
	if array {
		return printJSON(a.stdout, runs)
	}
	return printJSON(a.stdout, runs[0])
}

func slurmNode(r *core.Run) string {
	if r.Slurm != nil && r.Slurm.Node != "" {
		return r.Slurm.Node
	}
	return "slurm"
}

// slurmPoll is how often --wait asks for news.
const slurmPoll = 200 * time.Millisecond

// waitSlurm waits until every run of ids has finished, storing records as
// they come (the Tracker), and returns the runs in ids' order. Ctrl-C
// cancels the job with scancel first.
func (a *app) waitSlurm(ctx context.Context, client *slurmdrv.Client, jobID string, ids []string) ([]core.Run, error) {
	tr := a.term.tracker
	for {
		if _, err := tr.Refresh(context.WithoutCancel(ctx)); err != nil {
			a.log.Debug("slurm refresh", "err", err)
		}
		runs := make([]core.Run, len(ids))
		done := true
		for i, id := range ids {
			r, err := a.store.Run(context.WithoutCancel(ctx), id)
			if err != nil {
				return nil, err
			}
			runs[i] = *r
			done = done && r.Status.Finished()
		}
		if done {
			return runs, nil
		}
		select {
		case <-ctx.Done():
			bg := context.WithoutCancel(ctx)
			if err := client.Cancel(bg, jobID); err != nil {
				return nil, fmt.Errorf("interrupted; cancelling slurm job %s: %w", jobID, err)
			}
			fmt.Fprintf(a.stderr, "runprov: interrupted: cancelled slurm job %s; its runs end aborted (see runprov runs)\n", jobID)
			return nil, exitStatus{130}
		case <-time.After(slurmPoll):
		}
	}
}

// syncSlurm stores the records Slurm jobs wrote and asks the scheduler
// about the runs not finished, so that every command sees them up to date.
// Failures are logged, not returned: the store works without Slurm.
func (a *app) syncSlurm(ctx context.Context) {
	tr := a.term.tracker
	ctx, cancel := context.WithTimeout(ctx, slurmdrv.DefaultQueryTimeout)
	defer cancel()
	n, err := tr.Refresh(ctx)
	switch {
	case errors.Is(err, core.ErrUnsupported):
		a.log.Debug("slurm runs not refreshed", "err", err)
	case err != nil:
		a.log.Warn("slurm runs not refreshed", "err", err)
	case n > 0:
		a.log.Debug("slurm runs refreshed", "changed", n)
	}
}

func newExecPreparedCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:    "exec-prepared RUN",
		Short:  "Execute a prepared run on this node and write its record (Slurm batch scripts call it)",
		Hidden: true,
		Args:   exactArgs("exec-prepared", "which run?"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.execPrepared(cmd.Context(), args[0])
		},
	}
}

// execPrepared runs the prepared run id from STORE/runs/RUN on this node
// and writes its record file; it exits with the container's status.
func (a *app) execPrepared(ctx context.Context, id string) error {
	root, err := filepath.Abs(a.storeDir)
	if err != nil {
		return err
	}
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return usagef("exec-prepared %q: want a full run id (32 hex digits)", id)
	}
	run, err := nodeExecutor(core.Layout{Root: root}).Exec(ctx, id)
	if err != nil || run == nil {
		return err
	}
	return runExitError(run)
}

// parseArray reads --array: "" (no array), N (N tasks, 0 to N-1) or A-B
// (tasks A to B, as sbatch --array=A-B). How many tasks the cluster takes
// (MaxArraySize) is for sbatch to say.
func parseArray(s string) (first, tasks int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, isRange := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	switch {
	case !isRange && err1 == nil && lo >= 1:
		return 0, lo, nil
	case isRange && err1 == nil && err2 == nil && 0 <= lo && lo <= hi:
		return lo, hi - lo + 1, nil
	}
	return 0, 0, usagef("--array %q: want a number of tasks N (at least 1) or a range of task indexes A-B (0 ≤ A ≤ B); the steps, lists and %%limits of sbatch --array are not supported", s)
}
