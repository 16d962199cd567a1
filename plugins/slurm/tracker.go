package slurm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/runprov/runprov/core"
	slurmdrv "github.com/runprov/runprov/drivers/slurm"
	"github.com/runprov/runprov/plugins/env"
)

// DefaultGrace is how long after its job ended a run without a record file
// is still waited for before it is marked aborted: the job may still be
// writing it (Slurm's KillWait after scancel), or a shared file system may
// show it to this host late.
const DefaultGrace = 45 * time.Second

// Store is what the Tracker needs of the middleware (drivers/sqlite).
type Store interface {
	Runs(ctx context.Context, f core.RunFilter) ([]core.Run, error)
	Run(ctx context.Context, idPrefix string) (*core.Run, error)
	FinishRun(ctx context.Context, r *core.Run) error
	UpdateUnfinishedRun(ctx context.Context, u core.RunUpdate) (bool, error)
	PutEnvironment(ctx context.Context, e core.Environment) (string, error)
	PutSystemKernel(ctx context.Context, k *core.SystemKernel) (string, error)
	LastSystemKernel(ctx context.Context, commit, exceptRun string) (*core.SystemKernel, error)
}

// Scheduler says what Slurm knows of jobs (drivers/slurm.Client).
type Scheduler interface {
	Jobs(ctx context.Context, ids []string) (map[string]slurmdrv.JobInfo, error)
}

// Tracker brings the Slurm runs of a store up to date.
type Tracker struct {
	Store     Store
	Layout    core.Layout
	Scheduler Scheduler // nil: Refresh only ingests
	Log       *slog.Logger
	Grace     time.Duration // 0: DefaultGrace
	Now       func() time.Time
}

func (t *Tracker) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Tracker) log() *slog.Logger {
	if t.Log != nil {
		return t.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Unfinished returns the Slurm runs that are queued or running, newest first.
func (t *Tracker) Unfinished(ctx context.Context) ([]core.Run, error) {
	var out []core.Run
	for _, s := range []core.RunStatus{core.RunQueued, core.RunRunning} {
		runs, err := t.Store.Runs(ctx, core.RunFilter{Status: s})
		if err != nil {
			return nil, err
		}
		for _, r := range runs {
			if r.Executor == "slurm" {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// Ingest stores the record file of every unfinished Slurm run that has one
// and returns how many it stored. It is idempotent and safe to run from
// several processes at once: storing a record replaces the run's row in one
// transaction (FinishRun), and the file stays where the job wrote it. A
// record that cannot be read or does not belong to its run is logged and
// left alone; the errors are returned joined after the others are stored.
func (t *Tracker) Ingest(ctx context.Context) (int, error) {
	runs, err := t.Unfinished(ctx)
	if err != nil {
		return 0, fmt.Errorf("list unfinished slurm runs: %w", err)
	}
	n := 0
	var errs []error
	for i := range runs {
		ok, err := t.ingestOne(ctx, &runs[i])
		if err != nil {
			t.log().Warn("slurm run record not ingested", "run", runs[i].ID, "err", err)
			errs = append(errs, err)
		}
		if ok {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// ingestOne stores the record of stored if its job wrote one.
func (t *Tracker) ingestOne(ctx context.Context, stored *core.Run) (bool, error) {
	rec, err := ReadRecord(filepath.Join(t.Layout.Run(stored.ID), RecordName))
	if isNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := t.StoreRecord(ctx, stored, rec); err != nil {
		return false, err
	}
	return true, nil
}

// StoreRecord stores one record for the run stored (as the database has it):
// the node's environment and system snapshot, the drift against the
// commit's previous run, then the run itself.
func (t *Tracker) StoreRecord(ctx context.Context, stored *core.Run, rec *Record) error {
	r := rec.Run
	switch {
	case r.ID != stored.ID:
		return fmt.Errorf("record of run %s: %w: it is the record of run %s", stored.ID, core.ErrCorrupt, r.ID)
	case r.Commit != stored.Commit || r.ImageDigest != stored.ImageDigest || r.Executor != stored.Executor:
		return fmt.Errorf("record of run %s: %w: its commit, image or executor differ from the run's", stored.ID, core.ErrCorrupt)
	}
	// The node knows its job id, node and partition from Slurm's
	// environment; the submitter's job id fills in what it lacks.
	if r.Slurm != nil || stored.Slurm != nil {
		var job core.SlurmJob
		if r.Slurm != nil {
			job = *r.Slurm
		}
		if s := stored.Slurm; s != nil {
			if job.JobID == "" {
				job.JobID, job.ArrayTask = s.JobID, s.ArrayTask
			}
			if job.ArrayTask == nil {
				job.ArrayTask = s.ArrayTask
			}
			if job.Node == "" {
				job.Node = s.Node
			}
			if job.Partition == "" {
				job.Partition = s.Partition
			}
		}
		r.Slurm = &job
	}
	if rec.Environment != nil {
		sha, err := t.Store.PutEnvironment(ctx, *rec.Environment)
		if err != nil {
			return fmt.Errorf("record of run %s: %w", r.ID, err)
		}
		r.EnvironmentSHA256 = sha
	}
	if rec.SystemKernel != nil {
		if r.Drift == "" {
			prev, err := t.Store.LastSystemKernel(ctx, r.Commit, r.ID)
			if err == nil {
				if d := env.Compare(prev, rec.SystemKernel); !d.Empty() {
					r.Drift = d.Summary()
				}
			} else if !errors.Is(err, core.ErrNotFound) {
				return fmt.Errorf("record of run %s: %w", r.ID, err)
			}
		}
		sha, err := t.Store.PutSystemKernel(ctx, rec.SystemKernel)
		if err != nil {
			return fmt.Errorf("record of run %s: %w", r.ID, err)
		}
		r.SystemKernelSHA256 = sha
	}
	if err := t.Store.FinishRun(ctx, &r); err != nil {
		return fmt.Errorf("record of run %s: %w", r.ID, err)
	}
	*stored = r
	return nil
}

// JobKey is the scheduler's id of a run's job: "ID", or "ID_TASK" for an
// array task; "" when the run has no job.
func JobKey(r *core.Run) string {
	if r.Slurm == nil || r.Slurm.JobID == "" {
		return ""
	}
	if r.Slurm.ArrayTask != nil {
		return fmt.Sprintf("%s_%d", r.Slurm.JobID, *r.Slurm.ArrayTask)
	}
	return r.Slurm.JobID
}

// Refresh ingests the record files, then asks the scheduler about the Slurm
// runs still unfinished: a queued run whose job started becomes running,
// with its node and partition; a run whose job ended without a record
// (cancelled while pending, killed, timed out, lost) becomes aborted with the
// scheduler's reason once Grace has passed since the job ended (at once when
// it never started). It returns how many runs it ingested or changed. When
// the scheduler cannot be asked, the error says so and nothing is marked.
func (t *Tracker) Refresh(ctx context.Context) (int, error) {
	n, err := t.Ingest(ctx)
	if err != nil {
		t.log().Debug("slurm ingest", "err", err)
	}
	if t.Scheduler == nil {
		return n, nil
	}
	runs, err := t.Unfinished(ctx)
	if err != nil || len(runs) == 0 {
		return n, err
	}
	var ids []string
	for i := range runs {
		if k := JobKey(&runs[i]); k != "" {
			ids = append(ids, k)
		}
	}
	jobs, err := t.Scheduler.Jobs(ctx, ids)
	if err != nil {
		return n, fmt.Errorf("ask Slurm about %d unfinished runs: %w", len(ids), err)
	}
	grace := t.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	now := t.now()
	for i := range runs {
		r := &runs[i]
		key := JobKey(r)
		if key == "" {
			continue
		}
		j, known := jobs[key]
		var u *core.RunUpdate
		switch {
		case known && j.Pending():
			// Waiting (or requeued): nothing new.
		case known && !j.Finished():
			if r.Status == core.RunQueued || (j.Node != "" && r.Slurm.Node != j.Node) {
				u = &core.RunUpdate{ID: r.ID, Status: core.RunRunning, Node: j.Node, Partition: j.Partition, Started: now}
			}
		case known && j.Node != "" && !j.End.IsZero() && now.Sub(j.End) < grace:
			// Ended moments ago: its record may still be on its way.
			if r.Status == core.RunQueued {
				u = &core.RunUpdate{ID: r.ID, Status: core.RunRunning, Node: j.Node, Partition: j.Partition}
			}
		case known:
			reason := j.Describe()
			if j.Node != "" {
				reason += "; the job wrote no record (see " + filepath.Join(t.Layout.Run(r.ID), "slurm.out") + ")"
			}
			u = &core.RunUpdate{ID: r.ID, Status: core.RunAborted, Node: j.Node, Partition: j.Partition, Ended: orNow(j.End, now), Reason: reason}
		case now.Sub(r.Created) >= grace:
			u = &core.RunUpdate{ID: r.ID, Status: core.RunAborted, Ended: now,
				Reason: fmt.Sprintf("slurm job %s is unknown to squeue and sacct and wrote no record", key)}
		}
		if u == nil {
			continue
		}
		if u.Status == core.RunAborted {
			// The record may have landed since Ingest looked.
			if ok, err := t.ingestOne(ctx, r); ok || err != nil {
				if ok {
					n++
				}
				continue
			}
		}
		changed, err := t.Store.UpdateUnfinishedRun(ctx, *u)
		if err != nil {
			return n, err
		}
		if changed {
			t.log().Debug("slurm run updated", "run", r.ID, "job", key, "status", u.Status, "reason", u.Reason)
			n++
		}
	}
	return n, nil
}

func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t
}
