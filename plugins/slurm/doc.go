// Package slurm is the Slurm executor's side of run records: the record file
// a job writes on its node when its run ends (record.json in the run's
// directory, written atomically, no database on the node), and the Tracker
// that any runprov command uses to ingest those files into the middleware
// idempotently and to ask the scheduler (drivers/slurm) about runs that have
// not finished: queued → running with node and partition, and aborted with
// the scheduler's reason for jobs that ended without writing a record.
//
// Submission prepares runs with plugins/producer and submits them as one
// batch job; Node executes a prepared run on the node the job landed on and
// writes its record file.
//
// It imports drivers/slurm for the job states the scheduler reports and the
// batch script's format, and drivers/runtime for the runtimes a Node runs;
// it is handed its scheduler and runtimes, it does not build them.
package slurm
