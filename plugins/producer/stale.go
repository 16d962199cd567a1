package producer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/runprov/runprov/core"
)

// CleanAbortedRun removes what the run id, whose runprov process died
// without finishing it (SIGKILL, a crash), left behind: its containers,
// its overlay root and, above all, its scratch directories, which may
// hold copies of sensitive inputs; its outputs go back to the user
// running runprov and are hashed, for the record to list what the run
// left. It reads the run's directory alone (run.json, plan.json), so it is
// safe to call for a run that got no further than preparing; a run
// without a directory has nothing to clean and no outputs.
func (p *Producer) CleanAbortedRun(ctx context.Context, id string) ([]core.FileRecord, error) {
	dir := p.Layout.Run(id)
	var pl execPlan
	if err := readJSON(filepath.Join(dir, "plan.json"), &pl); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("clean up run %s: %w", id, err)
	}
	var run core.Run
	if err := readJSON(filepath.Join(dir, "run.json"), &run); err != nil {
		return nil, fmt.Errorf("clean up run %s: %w", id, err)
	}
	var errs []error
	// A container that outlived its runprov would keep writing to the
	// scratch directory while it is removed.
	if rt, ok := p.Runtimes[pl.Runtime]; ok {
		for i := range run.Steps {
			errs = append(errs, rt.Delete(ctx, fmt.Sprintf("runprov-%s-%d", id, i)))
		}
	}
	d := runDirsOf(&run)
	// The run may have died before it made them.
	scratch, outputs := existing(d.scratch), existing(d.outputs)
	own := owners{rootless: pl.Rootless, idmap: pl.IDMap, same: pl.SameOwner}
	errs = append(errs, cleanupRun(dir, &pl, own, scratch, outputs))
	recs, err := hashOutputs(ctx, outputs, d.outName)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return recs, fmt.Errorf("clean up run %s: %w", id, err)
	}
	return recs, nil
}

func existing(paths []string) []string {
	var out []string
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}
