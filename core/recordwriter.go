package core

import "context"

// RecordWriter stores finished runs and the snapshots of the hosts they ran
// on, inside one transaction of the store that handed it out
// (drivers/sqlite's Store.WriteRecords; plugins/slurm stores the records of
// Slurm jobs with it). The store's method takes a function of a
// RecordWriter, so the type must be one both sides name. It is valid only
// while that function runs.
type RecordWriter interface {
	// PutEnvironment stores e once and returns its SHA256.
	PutEnvironment(ctx context.Context, e Environment) (string, error)
	// PutSystemKernel stores k once and returns its SHA256.
	PutSystemKernel(ctx context.Context, k *SystemKernel) (string, error)
	// LastSystemKernel returns the snapshot of the newest run of commit
	// other than exceptRun, as this transaction sees the runs, or an error
	// wrapping ErrNotFound when there is none.
	LastSystemKernel(ctx context.Context, commit, exceptRun string) (*SystemKernel, error)
	// FinishRun replaces every column of run r (but the id), its steps and
	// manifests; an error wrapping ErrNotFound when r.ID was never created.
	FinishRun(ctx context.Context, r *Run) error
}
