package slurm

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/runprov/runprov/core"
)

// RecordName is the file a Slurm job writes into its run directory
// (STORE/runs/RUN/) when the run ends.
const RecordName = "record.json"

// RecordVersion is the version of the record file format.
const RecordVersion = 1

// Record is what a job hands back to the store: the finished run and the
// environment and system snapshot of the node it ran on, which the node
// cannot store itself (it never opens the database).
type Record struct {
	Version      int                `json:"version"`
	Run          core.Run           `json:"run"`
	Environment  *core.Environment  `json:"environment,omitempty"`
	SystemKernel *core.SystemKernel `json:"system_kernel,omitempty"`
}

// WriteRecord writes rec as runDir/record.json so that a reader on any host
// sees either no file or the whole record: it is written to a temporary
// file in the same directory, flushed to disk, then renamed over the name
// (rename within a directory is atomic on local file systems, NFS, Lustre
// and GPFS), and the directory is flushed too.
func WriteRecord(runDir string, rec *Record) error {
	if rec.Version == 0 {
		rec.Version = RecordVersion
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode record of run %s: %w", rec.Run.ID, err)
	}
	f, err := os.CreateTemp(runDir, ".record-*.tmp")
	if err != nil {
		return fmt.Errorf("write record of run %s: %w", rec.Run.ID, err)
	}
	tmp := f.Name()
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(runDir, RecordName))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write record of run %s: %w", rec.Run.ID, err)
	}
	if d, err := os.Open(runDir); err == nil {
		d.Sync() // some file systems refuse to sync a directory; the rename is done
		d.Close()
	}
	return nil
}

// ReadRecord reads a record file. A missing file wraps os.ErrNotExist; one
// that is not a complete record wraps core.ErrCorrupt.
func ReadRecord(path string) (*Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, core.ErrCorrupt, err)
	}
	if rec.Version != RecordVersion {
		return nil, fmt.Errorf("%s: %w: record version %d, this runprov reads %d", path, core.ErrCorrupt, rec.Version, RecordVersion)
	}
	if rec.Run.ID == "" || !rec.Run.Status.Finished() {
		return nil, fmt.Errorf("%s: %w: not the record of a finished run", path, core.ErrCorrupt)
	}
	return &rec, nil
}

// isNotExist reports a missing record file.
func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }
