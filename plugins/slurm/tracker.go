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
	// UpdateUnfinishedRuns applies each update to its run while the run is
	// queued or running, all in one transaction, and returns how many rows
	// it changed.
	UpdateUnfinishedRuns(ctx context.Context, us []core.RunUpdate) (int, error)
	// WriteRecords calls fn with a writer whose writes commit in one
	// transaction when fn returns nil and are rolled back when it returns
	// an error.
	WriteRecords(ctx context.Context, fn func(w core.RecordWriter) error) error
}

// ingestBatch is how many records one transaction stores: enough that the
// per-transaction cost vanishes, few enough that the write lock is never
// held for long (a few tens of milliseconds).
const ingestBatch = 100

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
// several processes at once: records are stored ingestBatch at a time, each
// batch in one transaction that replaces the runs' rows, and the files stay
// where the jobs wrote them, so a batch that does not commit loses nothing.
// A record that cannot be read or does not belong to its run is logged and
// left alone; the errors are returned joined after the others are stored.
func (t *Tracker) Ingest(ctx context.Context) (int, error) {
	runs, err := t.Unfinished(ctx)
	if err != nil {
		return 0, fmt.Errorf("list unfinished slurm runs: %w", err)
	}
	var (
		todo []landed
		errs []error
	)
	for i := range runs {
		l, err := t.readLanded(&runs[i])
		if err != nil {
			t.log().Warn("slurm run record not ingested", "run", runs[i].ID, "err", err)
			errs = append(errs, err)
		} else if l != nil {
			todo = append(todo, *l)
		}
	}
	n := 0
	for len(todo) > 0 {
		batch := todo[:min(len(todo), ingestBatch)]
		todo = todo[len(batch):]
		k, err := t.storeLanded(ctx, batch)
		n += k
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// landed is the record file of an unfinished run, checked against it.
type landed struct {
	stored *core.Run // as the database has it; the stored run once in
	rec    *Record
	base   core.Run // the record's run, with the job fields merged
}

// readLanded reads the record of stored if its job wrote one (nil if not)
// and checks that it belongs to the run.
func (t *Tracker) readLanded(stored *core.Run) (*landed, error) {
	rec, err := ReadRecord(filepath.Join(t.Layout.Run(stored.ID), RecordName))
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	base, err := recordRun(stored, rec)
	if err != nil {
		return nil, err
	}
	return &landed{stored: stored, rec: rec, base: base}, nil
}

// storeLanded stores batch in one transaction and returns how many records
// it stored. When the transaction fails for a reason other than the store
// being busy and holds more than one record, each is stored alone, so that
// one bad record does not hold back the others and the error names it.
func (t *Tracker) storeLanded(ctx context.Context, batch []landed) (int, error) {
	done := make([]core.Run, len(batch))
	err := t.Store.WriteRecords(ctx, func(w core.RecordWriter) error {
		for i := range batch {
			r, err := writeRecord(ctx, w, batch[i].base, batch[i].rec)
			if err != nil {
				return err
			}
			done[i] = r
		}
		return nil
	})
	if err == nil {
		for i := range batch {
			*batch[i].stored = done[i]
		}
		return len(batch), nil
	}
	if len(batch) == 1 || ctx.Err() != nil || errors.Is(err, core.ErrBusy) {
		t.log().Warn("slurm run records not ingested", "runs", len(batch), "first", batch[0].stored.ID, "err", err)
		return 0, err
	}
	n := 0
	var errs []error
	for i := range batch {
		k, err := t.storeLanded(ctx, batch[i:i+1])
		n += k
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// ingestOne stores the record of stored if its job wrote one.
func (t *Tracker) ingestOne(ctx context.Context, stored *core.Run) (bool, error) {
	l, err := t.readLanded(stored)
	if err != nil || l == nil {
		return false, err
	}
	n, err := t.storeLanded(ctx, []landed{*l})
	return n == 1, err
}

// StoreRecord stores one record for the run stored (as the database has it),
// in a transaction of its own.
func (t *Tracker) StoreRecord(ctx context.Context, stored *core.Run, rec *Record) error {
	base, err := recordRun(stored, rec)
	if err != nil {
		return err
	}
	_, err = t.storeLanded(ctx, []landed{{stored: stored, rec: rec, base: base}})
	return err
}

// recordRun is the run of rec, checked against the run stored (as the
// database has it), with the job fields the node lacks taken from stored.
func recordRun(stored *core.Run, rec *Record) (core.Run, error) {
	r := rec.Run
	switch {
	case r.ID != stored.ID:
		return r, fmt.Errorf("record of run %s: %w: it is the record of run %s", stored.ID, core.ErrCorrupt, r.ID)
	case r.Commit != stored.Commit || r.ImageDigest != stored.ImageDigest || r.Executor != stored.Executor:
		return r, fmt.Errorf("record of run %s: %w: its commit, image or executor differ from the run's", stored.ID, core.ErrCorrupt)
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
	return r, nil
}

// writeRecord stores r, the run of rec, through w: the node's environment
// and system snapshot, the drift against the commit's previous run, then
// the run itself. It returns the run as stored.
func writeRecord(ctx context.Context, w core.RecordWriter, r core.Run, rec *Record) (core.Run, error) {
	if rec.Environment != nil {
		sha, err := w.PutEnvironment(ctx, *rec.Environment)
		if err != nil {
			return r, fmt.Errorf("record of run %s: %w", r.ID, err)
		}
		r.EnvironmentSHA256 = sha
	}
	if rec.SystemKernel != nil {
		if r.Drift == "" {
			prev, err := w.LastSystemKernel(ctx, r.Commit, r.ID)
			if err == nil {
				if d := env.Compare(prev, rec.SystemKernel); !d.Empty() {
					r.Drift = d.Summary()
				}
			} else if !errors.Is(err, core.ErrNotFound) {
				return r, fmt.Errorf("record of run %s: %w", r.ID, err)
			}
		}
		sha, err := w.PutSystemKernel(ctx, rec.SystemKernel)
		if err != nil {
			return r, fmt.Errorf("record of run %s: %w", r.ID, err)
		}
		r.SystemKernelSHA256 = sha
	}
	if err := w.FinishRun(ctx, &r); err != nil {
		return r, fmt.Errorf("record of run %s: %w", r.ID, err)
	}
	return r, nil
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
	var updates []core.RunUpdate
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
		t.log().Debug("slurm run update", "run", r.ID, "job", key, "status", u.Status, "reason", u.Reason)
		updates = append(updates, *u)
	}
	if len(updates) == 0 {
		return n, nil
	}
	// One transaction: the tasks of an array often move on together.
	changed, err := t.Store.UpdateUnfinishedRuns(ctx, updates)
	return n + changed, err
}

func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t
}
