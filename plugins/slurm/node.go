package slurm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/runtime"
	"github.com/runprov/runprov/plugins/env"
	"github.com/runprov/runprov/plugins/producer"
)

// Node executes prepared runs on a Slurm node from the run directories
// alone: no database, as the node may not share SQLite's locks.
type Node struct {
	Layout   core.Layout
	Runtimes map[string]runtime.Runtime
	// Scheduler is asked, briefly, why a job was stopped; nil: not asked.
	Scheduler Scheduler
}

// NotPreparedError: the run's directory is not on this node.
type NotPreparedError struct {
	ID, Store string
	Err       error
}

func (e *NotPreparedError) Error() string {
	return fmt.Sprintf("run %s is not prepared in %s: %v", e.ID, e.Store, e.Err)
}
func (e *NotPreparedError) Unwrap() error { return e.Err }

// Exec runs the prepared run id, takes this node's snapshots while it
// runs, and writes STORE/runs/RUN/record.json for the next runprov command
// to store. It returns the finished run (nil when it could not start) and
// what went wrong.
func (n *Node) Exec(ctx context.Context, id string) (*core.Run, error) {
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("%w: %q is not a full run id (32 hex digits)", core.ErrInvalid, id)
	}
	dir := n.Layout.Run(id)
	prepared, err := producer.ReadPreparedRun(dir)
	if err != nil {
		return nil, &NotPreparedError{ID: id, Store: n.Layout.Root, Err: err}
	}
	rt, ok := n.Runtimes[prepared.Runtime]
	if !ok {
		return nil, fmt.Errorf("run %s: %w: runtime %q", id, core.ErrUnsupported, prepared.Runtime)
	}

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
		return nil, err
	}
	if !run.Status.Finished() {
		run.Status, run.Reason = core.RunFailed, fmt.Sprint(err)
	}
	if host, herr := os.Hostname(); herr == nil {
		run.Hostname = host
	}
	run.Slurm = JobFromEnv()
	if run.Status == core.RunAborted && run.Slurm != nil {
		n.stopReason(ctx, run)
	}
	s := <-snapc
	rec := &Record{Run: *run, Environment: &s.env, SystemKernel: s.kernel}
	if werr := WriteRecord(dir, rec); werr != nil {
		return run, errors.Join(err, werr)
	}
	return run, err
}

// stopReason asks the scheduler why the job of an aborted run was stopped
// (scancel, time limit, preemption) and puts it in the run's reason.
func (n *Node) stopReason(ctx context.Context, run *core.Run) {
	if n.Scheduler == nil {
		return
	}
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	jobs, err := n.Scheduler.Jobs(qctx, []string{JobKey(&core.Run{Slurm: run.Slurm})})
	if err != nil {
		return
	}
	for _, j := range jobs {
		switch {
		case j.Finished():
			run.Reason = j.Describe() + " (" + run.Reason + ")"
		case j.State == "COMPLETING":
			run.Reason = fmt.Sprintf("slurm job %s stopped by the scheduler (%s)", j.ID, run.Reason)
		}
	}
}

// JobFromEnv is the Slurm job this process runs in, from the variables
// slurmstepd sets; nil outside Slurm.
func JobFromEnv() *core.SlurmJob {
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
