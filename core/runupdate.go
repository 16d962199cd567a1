package core

import "time"

// RunUpdate is what a scheduler says of a run that has not finished: the
// Slurm executor moves queued runs to running (with their node) and marks
// aborted those whose job ended without writing a record. Empty fields keep
// what is stored.
type RunUpdate struct {
	ID        string
	Status    RunStatus
	JobID     string // the Slurm job id, once sbatch has answered
	ArrayTask *int
	Node      string
	Partition string
	Started   time.Time
	Ended     time.Time
	Reason    string
}
