package slurm

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/runprov/runprov/core"
	slurmdrv "github.com/runprov/runprov/drivers/slurm"
	"github.com/runprov/runprov/plugins/producer"
)

// Preparer prepares a run for another node (plugins/producer).
type Preparer interface {
	PrepareQueued(ctx context.Context, opts producer.Options, task int) (*producer.Prepared, error)
}

// Submitter is what a submission needs of the scheduler (drivers/slurm.Client).
type Submitter interface {
	Submit(ctx context.Context, script string, args ...string) (string, error)
}

// RunUpdater finishes or updates the prepared runs' rows (drivers/sqlite).
type RunUpdater interface {
	FinishRun(ctx context.Context, r *core.Run) error
	// UpdateUnfinishedRuns applies each update to its run while the run is
	// queued or running, all in one transaction, and returns how many rows
	// it changed.
	UpdateUnfinishedRuns(ctx context.Context, us []core.RunUpdate) (int, error)
}

// Submission submits prepared runs to Slurm as one job.
type Submission struct {
	Producer  Preparer
	Runs      RunUpdater
	Scheduler Submitter
	Store     string // the store's root, which the batch script names
	Log       *slog.Logger
}

// SubmitOptions are the Slurm options of one `runprov run --executor slurm`.
type SubmitOptions struct {
	Array      int      // tasks of an array job; 0: a single job
	ArrayFirst int      // the first task's index (sbatch --array A-B: A)
	SbatchArgs []string // passed to sbatch and kept in the script
	Binary     string   // the runprov binary the nodes run
}

// PreparingError is a refusal of Prepare for one task: nothing was submitted.
type PreparingError struct {
	Task int
	Err  error
}

func (e *PreparingError) Error() string { return e.Err.Error() }
func (e *PreparingError) Unwrap() error { return e.Err }

// Submit prepares the runs (one, or one per array task), writes the batch
// script into each run's directory and submits them as one job; it returns
// the job id and the prepared runs, now queued. When anything fails before
// the job is taken, the prepared runs are marked aborted.
func (s *Submission) Submit(ctx context.Context, opts producer.Options, so SubmitOptions) (string, []*producer.Prepared, error) {
	opts.Executor = "slurm"
	var preps []*producer.Prepared
	abortAll := func(reason string) {
		bg := context.WithoutCancel(ctx)
		for _, prep := range preps {
			r := *prep.Run
			r.Status, r.Reason, r.Ended = core.RunAborted, reason, time.Now().UTC()
			if err := s.Runs.FinishRun(bg, &r); err != nil && s.Log != nil {
				s.Log.Error("mark run aborted", "run", r.ID, "err", err)
			}
		}
	}
	for i := range max(so.Array, 1) {
		task := -1
		if so.Array > 0 {
			task = so.ArrayFirst + i
		}
		prep, err := s.Producer.PrepareQueued(ctx, opts, task)
		if err != nil {
			abortAll(fmt.Sprintf("not submitted: preparing array task %d failed: %v", i, err))
			return "", nil, &PreparingError{Task: i, Err: err}
		}
		preps = append(preps, prep)
	}
	script, err := s.script(preps, so)
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
	jobID, err := s.Scheduler.Submit(ctx, filepath.Join(preps[0].Dir, "slurm.sh"), so.SbatchArgs...)
	if err != nil {
		abortAll("sbatch did not take the job: " + err.Error())
		return "", nil, err
	}
	return jobID, preps, s.markQueued(ctx, jobID, preps)
}

// script is the batch script of the prepared runs.
func (s *Submission) script(preps []*producer.Prepared, so SubmitOptions) (string, error) {
	ids := make([]string, len(preps))
	for i, prep := range preps {
		ids[i] = prep.Run.ID
	}
	lim := preps[0].Run.Limits
	job := slurmdrv.Job{Name: "runprov-" + core.ShortRunID(ids[0]), Output: "/dev/null",
		CPUs: lim.CPUs, MemoryBytes: lim.MemoryBytes, Timeout: lim.Timeout, ArrayTasks: so.Array, ArrayFirst: so.ArrayFirst}
	// The command line's sbatch arguments are kept with the script.
	body := "# runprov: submitted as: sbatch --parsable"
	for _, arg := range so.SbatchArgs {
		body += " " + slurmdrv.Quote(strings.ReplaceAll(arg, "\n", " "))
	}
	body += " slurm.sh\n" + slurmdrv.RunBody(so.Binary, s.Store, ids, so.ArrayFirst)
	return slurmdrv.Script(job, body)
}

// markQueued records the job of each run, in one transaction. A run whose
// record is already in is not touched: its record has the job id from the
// node.
func (s *Submission) markQueued(ctx context.Context, jobID string, preps []*producer.Prepared) error {
	us := make([]core.RunUpdate, len(preps))
	for i, prep := range preps {
		us[i] = core.RunUpdate{ID: prep.Run.ID, Status: core.RunQueued, JobID: jobID}
		if prep.Run.Slurm != nil {
			us[i].ArrayTask = prep.Run.Slurm.ArrayTask
		}
	}
	if _, err := s.Runs.UpdateUnfinishedRuns(context.WithoutCancel(ctx), us); err != nil {
		return &JobNotRecordedError{JobID: jobID, RunID: preps[0].Run.ID, Runs: len(preps), Err: err}
	}
	for i, prep := range preps {
		prep.Run.Slurm = &core.SlurmJob{JobID: jobID, ArrayTask: us[i].ArrayTask}
	}
	return nil
}

// JobNotRecordedError: the job was submitted and runs, but its runs' rows
// do not name it yet.
type JobNotRecordedError struct {
	JobID, RunID string // RunID: the first of the job's runs
	Runs         int
	Err          error
}

func (e *JobNotRecordedError) Error() string {
	if e.Runs > 1 {
		return fmt.Sprintf("record slurm job %s of runs %s and %d more: %v", e.JobID, e.RunID, e.Runs-1, e.Err)
	}
	return fmt.Sprintf("record slurm job %s of run %s: %v", e.JobID, e.RunID, e.Err)
}
func (e *JobNotRecordedError) Unwrap() error { return e.Err }
