package core

import (
	"context"
	"time"
)

// InputFingerprint is what the input cache keeps of a file that hashed:
// the stat fields that change whenever its content can (device, inode,
// size, and modification and change times in nanoseconds), with the
// sha256 it had and when it was hashed. A write, truncation, replacement,
// chmod or touch gives the file a new change time, which no user can set
// back, so a file whose fingerprint still matches has the same content.
type InputFingerprint struct {
	Dev      uint64    `json:"dev"`
	Ino      uint64    `json:"ino"`
	Size     int64     `json:"size"`
	MtimeNS  int64     `json:"mtime_ns"`
	CtimeNS  int64     `json:"ctime_ns"`
	SHA256   string    `json:"sha256"`
	HashedAt time.Time `json:"hashed_at"`
}

// SameFile reports whether f and g fingerprint the same unchanged file
// (their sha256 and hash time aside).
func (f InputFingerprint) SameFile(g InputFingerprint) bool {
	return f.Dev == g.Dev && f.Ino == g.Ino && f.Size == g.Size && f.MtimeNS == g.MtimeNS && f.CtimeNS == g.CtimeNS
}

// InputCache keeps the fingerprints of input files by absolute host path
// (drivers/sqlite), so that a run re-hashes only the files that changed.
type InputCache interface {
	// InputFingerprints returns the fingerprints stored for the files at
	// or under each of roots (absolute host paths), by path. None is not
	// an error.
	InputFingerprints(ctx context.Context, roots []string) (map[string]InputFingerprint, error)
	// PutInputFingerprints replaces what is stored at or under each of
	// roots with fps, whose paths are at or under them: files gone or
	// changed since lose their entries.
	PutInputFingerprints(ctx context.Context, roots []string, fps map[string]InputFingerprint) error
}

// InputsCacheSummary is how a run's input manifest was made: cached files
// took their sha256 from the input cache, and hashedAt is the oldest of
// their CachedAt, so every input file was read in full at that time or
// later. Both are zero when the run read every file itself.
func InputsCacheSummary(inputs []FileRecord) (cached int, hashedAt time.Time) {
	for _, f := range inputs {
		if f.CachedAt.IsZero() {
			continue
		}
		cached++
		if hashedAt.IsZero() || f.CachedAt.Before(hashedAt) {
			hashedAt = f.CachedAt
		}
	}
	return cached, hashedAt
}
