package history

import (
	"context"
	"errors"
	"fmt"

	"github.com/runprov/runprov/core"
)

// CheckStore is what Checker reads of the middleware (drivers/sqlite).
type CheckStore interface {
	// Runs lists runs, newest first, without steps and manifests.
	Runs(ctx context.Context, f core.RunFilter) ([]core.Run, error)
	// Environment and SystemKernel return a snapshot by its key: an error
	// wrapping core.ErrNotFound when there is none, and a
	// *core.DigestMismatchError or core.ErrCorrupt when the row no longer
	// hashes to its key.
	Environment(ctx context.Context, sha string) (*core.Environment, error)
	SystemKernel(ctx context.Context, sha string) (*core.SystemKernel, error)
}

// Checker is the runs' part of runprov fsck: every finished run (succeeded,
// failed, aborted) has an end time, and the environment and SystemKernel
// snapshots a run refers to exist and hash to their keys, and no finished
// run left its scratch directory (check_scratch.go). It does not
// re-hash input or output files: those live in the user's directories, may
// change after a run by design, and can be as large as the data
// (reproduce re-hashes inputs; diff compares outputs).
type Checker struct {
	Store CheckStore
	// RunsDir is STORE/runs, where finished runs must have left no
	// scratch ("": not checked).
	RunsDir string
}

// Check verifies for runprov fsck what the run directories hold.
func (c *Checker) Check(ctx context.Context, report func(core.Problem)) error {
	runs, err := c.Store.Runs(ctx, core.RunFilter{})
	if err != nil {
		return err
	}
	if err := c.checkScratch(runs, report); err != nil {
		return err
	}
	// Many runs share a snapshot: look each key up once.
	envs, kernels := map[string]error{}, map[string]error{}
	lookup := func(seen map[string]error, sha string, get func() error) error {
		if err, ok := seen[sha]; ok {
			return err
		}
		err := get()
		seen[sha] = err
		return err
	}
	for i := range runs {
		r := &runs[i]
		bad := func(format string, args ...any) {
			report(core.Problem{Where: "run " + r.ID, What: fmt.Sprintf(format, args...)})
		}
		if r.Status.Finished() && r.Ended.IsZero() {
			bad("status %s but no end time", r.Status)
		}
		if sha := r.EnvironmentSHA256; sha != "" {
			err := lookup(envs, sha, func() error { _, err := c.Store.Environment(ctx, sha); return err })
			if err := snapshotProblem("environment", sha, err); err != nil {
				if !isFinding(err) {
					return err
				}
				bad("%v", err)
			}
		}
		if sha := r.SystemKernelSHA256; sha != "" {
			err := lookup(kernels, sha, func() error { _, err := c.Store.SystemKernel(ctx, sha); return err })
			if err := snapshotProblem("system kernel snapshot", sha, err); err != nil {
				if !isFinding(err) {
					return err
				}
				bad("%v", err)
			}
		}
	}
	return nil
}

// problemError is a finding about the store, as opposed to an error that
// kept the check from looking.
type problemError struct{ msg string }

func (e *problemError) Error() string { return e.msg }

func isFinding(err error) bool {
	var p *problemError
	return errors.As(err, &p)
}

// snapshotProblem turns the result of looking a snapshot up into a finding
// (missing, or not hashing to its key), nil, or the error itself when the
// store could not be read.
func snapshotProblem(what, sha string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, core.ErrNotFound):
		return &problemError{fmt.Sprintf("refers to %s %s, which is not in the store", what, sha)}
	case errors.Is(err, core.ErrCorrupt): // also a *core.DigestMismatchError
		return &problemError{fmt.Sprintf("its %s is corrupt: %v", what, err)}
	}
	return err
}
