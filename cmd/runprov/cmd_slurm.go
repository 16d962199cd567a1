package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/runtime"
	slurmdrv "github.com/runprov/runprov/drivers/slurm"
	"github.com/runprov/runprov/plugins/env"
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
	array      int
	wait       bool
}

func addSlurmFlags(f *pflag.FlagSet, sf *slurmFlags) {
	f.StringVar(&sf.executor, "executor", "local", "who executes the run: local, or slurm (submits a batch job and returns the run id)")
	f.StringArrayVar(&sf.sbatchArgs, "sbatch-arg", nil, "with --executor slurm: pass `ARG` to sbatch, e.g. --sbatch-arg=--partition=long (repeat)")
	f.IntVar(&sf.array, "array", 0, "with --executor slurm: run `N` array tasks, each its own run with SLURM_ARRAY_TASK_ID in its args")
	f.BoolVar(&sf.wait, "wait", false, "with --executor slurm: wait for the runs to end and exit with their status")
}

// check refuses flag combinations that cannot work.
func (sf *slurmFlags) check(opts producer.Options) error {
	switch sf.executor {
	case "local":
		if len(sf.sbatchArgs) > 0 || sf.array != 0 || sf.wait {
			return usagef("--sbatch-arg, --array and --wait need --executor slurm")
		}
	case "slurm":
		if sf.array < 0 {
			return usagef("--array %d: want a number of tasks, at least 1", sf.array)
		}
		if sf.array > 0 && opts.OutputsDir != "" {
			return usagef("--outputs with --array: each task needs its own outputs directory; leave out --outputs (task outputs go to STORE/runs/RUN/outputs)")
		}
	default:
		return usagef("--executor %q: want local or slurm", sf.executor)
	}
	return nil
}

// submitSlurm prepares the runs (one, or one per array task), writes the
// batch script into each run's directory and submits them as one job; it
// returns the job id and the prepared runs. When anything fails before the
// job is taken, the prepared runs are marked aborted.
func (a *app) submitSlurm(ctx context.Context, p *producer.Producer, opts producer.Options, sf slurmFlags, bin string) (string, []*producer.Prepared, error) {
	client := a.term.slurm
	opts.Executor = "slurm"
	st := a.store
	var preps []*producer.Prepared
	abortAll := func(reason string) {
		bg := context.WithoutCancel(ctx)
		for _, prep := range preps {
			r := *prep.Run
			r.Status, r.Reason, r.Ended = core.RunAborted, reason, time.Now().UTC()
			if err := st.FinishRun(bg, &r); err != nil {
				a.log.Error("mark run aborted", "run", r.ID, "err", err)
			}
		}
	}
	tasks := max(sf.array, 1)
	for i := range tasks {
		task := -1
		if sf.array > 0 {
			task = i
		}
		prep, err := p.PrepareQueued(ctx, opts, task)
		if err != nil {
			abortAll(fmt.Sprintf("not submitted: preparing array task %d failed: %v", i, err))
			return "", nil, runRefused(err)
		}
		preps = append(preps, prep)
	}
	ids := make([]string, len(preps))
	for i, prep := range preps {
		ids[i] = prep.Run.ID
	}
	lim := preps[0].Run.Limits
	job := slurmdrv.Job{Name: "runprov-" + core.ShortRunID(ids[0]), Output: "/dev/null",
		CPUs: lim.CPUs, MemoryBytes: lim.MemoryBytes, Timeout: lim.Timeout, ArrayTasks: sf.array}
	// The command line's sbatch arguments are kept with the script.
	body := "# runprov: submitted as: sbatch --parsable"
	for _, arg := range sf.sbatchArgs {
		body += " " + slurmdrv.Quote(strings.ReplaceAll(arg, "\n", " "))
	}
	body += " slurm.sh\n" + slurmdrv.RunBody(bin, p.Layout.Root, ids)
	script, err := slurmdrv.Script(job, body)
	if err != nil {
		abortAll("not submitted: " + err.Error())
		return "", nil, err
	}
	// Every run keeps the script it was submitted with.
	for _, prep := range preps {
		if err := os.WriteFile(filepath.Join(prep.Dir, "slurm.sh"), []byte(script), 0o700); err != nil {
			abortAll("not submitted: " + err.Error())
			return "", nil, fmt.Errorf("write batch script: %w", err)
		}
	}
	jobID, err := client.Submit(ctx, filepath.Join(preps[0].Dir, "slurm.sh"), sf.sbatchArgs...)
	if err != nil {
		abortAll("sbatch did not take the job: " + err.Error())
		return "", nil, err
	}
	for _, prep := range preps {
		u := core.RunUpdate{ID: prep.Run.ID, Status: core.RunQueued, JobID: jobID}
		if prep.Run.Slurm != nil {
			u.ArrayTask = prep.Run.Slurm.ArrayTask
		}
		// A run whose record is already in is not touched; its record has
		// the job id from the node.
		if _, err := st.UpdateUnfinishedRun(context.WithoutCancel(ctx), u); err != nil {
			return "", nil, fmt.Errorf("record slurm job %s of run %s: %w (the job runs; runprov show %s will have it once it ends)", jobID, prep.Run.ID, err, prep.Run.ID)
		}
		prep.Run.Slurm = &core.SlurmJob{JobID: jobID, ArrayTask: u.ArrayTask}
	}
	return jobID, preps, nil
}

// runSlurm prepares the runs (one, or one per array task), submits them as
// one job and prints their ids; with --wait it waits and exits with the
// runs' status. When sbatch is missing or refuses the job, the prepared
// runs are marked aborted (no queued row is left behind) and runprov exits
// 125.
func (a *app) runSlurm(ctx context.Context, p *producer.Producer, opts producer.Options, sf slurmFlags) error {
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
	jobID, preps, err := a.submitSlurm(ctx, p, opts, sf, bin)
	if err != nil {
		return err
	}
	ids := make([]string, len(preps))
	for i, prep := range preps {
		ids[i] = prep.Run.ID
	}
	if !a.quiet {
		if sf.array > 0 {
			fmt.Fprintf(a.stderr, "runprov: %d runs queued as slurm array job %s (commit %s)\n", len(ids), jobID, shortHash(preps[0].Run.Commit))
		} else {
			fmt.Fprintf(a.stderr, "runprov: run %s queued as slurm job %s (commit %s)\n", ids[0], jobID, shortHash(preps[0].Run.Commit))
		}
	}
	if !sf.wait {
		if a.json {
			return printRuns(a, preps2runs(preps), sf.array > 0)
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
		if err := printRuns(a, runs, sf.array > 0); err != nil {
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

// execPrepared runs the prepared run id from STORE/runs/RUN alone (no
// database: the node may not share SQLite's locks), takes this node's
// snapshots, and writes STORE/runs/RUN/record.json for the next runprov
// command to store. It exits with the container's status.
func (a *app) execPrepared(ctx context.Context, id string) error {
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return usagef("exec-prepared %q: want a full run id (32 hex digits)", id)
	}
	root, err := filepath.Abs(a.storeDir)
	if err != nil {
		return err
	}
	layout := core.Layout{Root: root}
	dir := layout.Run(id)
	runtimes := nodeRuntimes(layout)
	var prepared core.Run
	if err := readRunJSON(filepath.Join(dir, "run.json"), &prepared); err != nil {
		return fmt.Errorf("run %s is not prepared in %s: %w (is the store on a file system this node shares?)", id, root, err)
	}
	rt, ok := runtimes[prepared.Runtime]
	if !ok {
		return fmt.Errorf("run %s: %w: runtime %q", id, core.ErrUnsupported, prepared.Runtime)
	}

	// The node's snapshots, taken while the container runs.
	type snap struct {
		env    core.Environment
		kernel *core.SystemKernel
	}
	snapc := make(chan snap, 1)
	go func() {
		e, _ := env.CollectEnvironment()
		version, _ := rt.Version(ctx)
		snapc <- snap{e, env.CollectSystemKernel(context.WithoutCancel(ctx), env.RuntimeInfo{Name: rt.Name(), Version: version})}
	}()

	run, err := producer.Execute(ctx, dir, rt, runtime.Stdio{})
	if run == nil {
		return err
	}
	if !run.Status.Finished() {
		run.Status, run.Reason = core.RunFailed, fmt.Sprint(err)
	}
	if host, herr := os.Hostname(); herr == nil {
		run.Hostname = host
	}
	run.Slurm = jobFromEnv()
	if run.Status == core.RunAborted && run.Slurm != nil {
		// Why the job was stopped is the scheduler's to say (scancel, time
		// limit, preemption); ask it briefly.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		client := nodeSlurmClient(5 * time.Second)
		if jobs, jerr := client.Jobs(qctx, []string{slurmplug.JobKey(&core.Run{Slurm: run.Slurm})}); jerr == nil {
			for _, j := range jobs {
				switch {
				case j.Finished():
					run.Reason = j.Describe() + " (" + run.Reason + ")"
				case j.State == "COMPLETING":
					run.Reason = fmt.Sprintf("slurm job %s stopped by the scheduler (%s)", j.ID, run.Reason)
				}
			}
		}
		cancel()
	}
	s := <-snapc
	rec := &slurmplug.Record{Run: *run, Environment: &s.env, SystemKernel: s.kernel}
	if werr := slurmplug.WriteRecord(dir, rec); werr != nil {
		return errors.Join(err, werr)
	}
	if err != nil {
		return err
	}
	return runExitError(run)
}

// jobFromEnv is the Slurm job this process runs in, from the variables
// slurmstepd sets; nil outside Slurm.
func jobFromEnv() *core.SlurmJob {
	id := os.Getenv("SLURM_JOB_ID")
	if id == "" {
		return nil
	}
	job := &core.SlurmJob{JobID: id, Node: os.Getenv("SLURMD_NODENAME"), Partition: os.Getenv("SLURM_JOB_PARTITION")}
	if arr := os.Getenv("SLURM_ARRAY_JOB_ID"); arr != "" {
		var task int
		if _, err := fmt.Sscan(os.Getenv("SLURM_ARRAY_TASK_ID"), &task); err == nil {
			job.JobID, job.ArrayTask = arr, &task
		}
	}
	return job
}

func readRunJSON(p string, r *core.Run) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, r); err != nil {
		return fmt.Errorf("%s: %w: %v", p, core.ErrCorrupt, err)
	}
	return nil
}
