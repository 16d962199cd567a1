package history

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/runprov/runprov/core"
)

// checkScratch reports the scratch directory (RUNS/RUN/scratch) of every
// finished run that still has one: scratch holds the run's working
// copies, which may be copies of sensitive inputs, and must go when the
// run ends. Running and queued runs keep theirs.
func (c *Checker) checkScratch(runs []core.Run, report func(core.Problem)) error {
	if c.RunsDir == "" {
		return nil
	}
	for i := range runs {
		r := &runs[i]
		if !r.Status.Finished() {
			continue
		}
		p := filepath.Join(c.RunsDir, r.ID, "scratch")
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("check the scratch of run %s: %w", r.ID, err)
		}
		report(core.Problem{Where: "run " + r.ID, What: fmt.Sprintf("the %s run left its scratch directory %s, which may hold copies of its inputs; remove it (rm -rf %s)", r.Status, p, p)})
	}
	return nil
}
