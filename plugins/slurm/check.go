package slurm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/runprov/runprov/core"
)

// Check verifies for runprov fsck: every record file a
// Slurm job left in the store (STORE/runs/RUN/record.json) reads as a
// record of that run, the run is in the store, and the record was ingested:
// the run is finished with the record's status, exit code and end time.
// Every command ingests records first, so a record still not ingested is
// one that ingest refused, or one that came after the run was marked
// aborted.
func (t *Tracker) Check(ctx context.Context, report func(core.Problem)) error {
	dirs, err := os.ReadDir(t.Layout.RunsDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list run directories: %w", err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		id := d.Name()
		path := filepath.Join(t.Layout.Run(id), RecordName)
		bad := func(format string, args ...any) {
			report(core.Problem{Where: "run " + id, What: path + ": " + fmt.Sprintf(format, args...)})
		}
		rec, err := ReadRecord(path)
		switch {
		case isNotExist(err):
			continue
		case errors.Is(err, core.ErrCorrupt):
			report(core.Problem{Where: "run " + id, What: fmt.Sprintf("slurm record file is not a record: %v", err)})
			continue
		case err != nil:
			return err
		}
		if rec.Run.ID != id {
			bad("slurm record file of run %s in the directory of run %s; never ingested", rec.Run.ID, id)
			continue
		}
		stored, err := t.Store.Run(ctx, id)
		if errors.Is(err, core.ErrNotFound) || errors.Is(err, core.ErrAmbiguous) {
			bad("slurm record file of a run that is not in the store; never ingested")
			continue
		}
		if err != nil {
			return err
		}
		if d := ingestedDiff(stored, &rec.Run); d != "" {
			bad("slurm record file never ingested: %s", d)
		}
	}
	return nil
}

// ingestedDiff says how stored differs from the record's run r in what
// ingesting r would have stored; "" when it does not.
func ingestedDiff(stored, r *core.Run) string {
	exit := func(p *int) string {
		if p == nil {
			return "none"
		}
		return fmt.Sprint(*p)
	}
	switch {
	case !stored.Status.Finished():
		return fmt.Sprintf("the store has the run %s, the record says %s", stored.Status, r.Status)
	case stored.Status != r.Status:
		return fmt.Sprintf("the store has the run %s (%s), the record says %s", stored.Status, stored.Reason, r.Status)
	case exit(stored.ExitCode) != exit(r.ExitCode):
		return fmt.Sprintf("the store has exit code %s, the record %s", exit(stored.ExitCode), exit(r.ExitCode))
	case !stored.Ended.Equal(r.Ended):
		return fmt.Sprintf("the store has the run ending %s, the record %s", stored.Ended, r.Ended)
	}
	return ""
}
