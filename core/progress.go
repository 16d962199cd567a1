package core

// Progress receives progress of long work (copying blobs, hashing files).
// cmd/runprov supplies a bar on a terminal and plain lines otherwise;
// libraries take a Progress and use NoProgress when given nil.
type Progress interface {
	// Start begins a unit of work; total is in bytes or items, or -1 if unknown.
	Start(what string, total int64)
	// Add reports n more bytes or items done.
	Add(n int64)
	// Done ends the unit of work started last.
	Done()
}

// NoProgress discards progress.
type NoProgress struct{}

func (NoProgress) Start(string, int64) {}
func (NoProgress) Add(int64)           {}
func (NoProgress) Done()               {}

// OrNoProgress returns p, or NoProgress if p is nil.
func OrNoProgress(p Progress) Progress {
	if p == nil {
		return NoProgress{}
	}
	return p
}
