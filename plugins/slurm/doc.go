// Package slurm is the Slurm executor's side of run records: the record file
// a job writes on its node when its run ends (record.json in the run's
// directory, written atomically, no database on the node), and the Tracker
// that any runprov command uses to ingest those files into the middleware
// idempotently and to ask the scheduler (drivers/slurm) about runs that have
// not finished: queued → running with node and partition, and aborted with
// the scheduler's reason for jobs that ended without writing a record.
//
// It does not submit jobs or run containers: cmd/runprov does that with
// drivers/slurm and plugins/producer.
//
// It imports drivers/slurm for the job states the scheduler reports; the
// Tracker is handed its Scheduler, it does not build one.
package slurm
