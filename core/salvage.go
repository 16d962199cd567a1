package core

import "context"

// ObjectScan is what reading every object of a repository's object store,
// entry by entry and without trusting the pack indexes, found.
type ObjectScan struct {
	Objects int `json:"objects"` // distinct objects that read back whole
	// Unindexed counts objects a pack holds that its index does not list:
	// git and go-git cannot read them, a salvage can.
	Unindexed int      `json:"unindexed"`
	Problems  []string `json:"problems,omitempty"` // what is wrong: unreadable entries, counts that disagree
}

// Damaged reports whether the scan found anything a reader would trip on.
func (s ObjectScan) Damaged() bool { return s.Unindexed > 0 || len(s.Problems) > 0 }

// RepoSalvager checks and rebuilds the object store of Runfile repositories
// (drivers/git).
type RepoSalvager interface {
	// ScanObjects reads every object of the repository in tarball without
	// trusting its pack indexes and says what it found. The error is for a
	// tarball that cannot be restored at all (ErrCorrupt) or an I/O failure.
	ScanObjects(ctx context.Context, tmpDir string, tarball []byte) (ObjectScan, error)
	// Salvage restores tarball, recovers every object that can still be
	// read, and writes them into a new repository under tmpDir whose branch
	// points where the old one did (possibly at a commit that was lost).
	Salvage(ctx context.Context, tmpDir string, tarball []byte) (GitRepo, ObjectScan, error)
}
