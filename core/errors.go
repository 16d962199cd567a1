package core

import (
	"errors"
	"fmt"
)

// Sentinel errors. Drivers and plugins wrap them with what they were doing;
// cmd/runprov maps them to exit codes and hints.
var (
	// ErrNotFound: the named thing (repo, commit, image, run, file) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAmbiguous: a prefix names more than one commit or run.
	ErrAmbiguous = errors.New("ambiguous prefix")
	// ErrExists: the thing to create is already there.
	ErrExists = errors.New("already exists")
	// ErrNoStore: the store directory has not been initialised.
	ErrNoStore = errors.New("no runprov store")
	// ErrInvalid: user input (a Runfile, a flag value, an archive) is malformed.
	ErrInvalid = errors.New("invalid input")
	// ErrBusy: the store stayed locked by another process past the busy timeout;
	// the operation changed nothing and may be retried.
	ErrBusy = errors.New("store busy")
	// ErrReadOnly: a statement given to the read-only query interface would write.
	ErrReadOnly = errors.New("read-only")
	// ErrStoreReadOnly: the store cannot be written by this process (a
	// read-only mount, no write permission), and the command would write it.
	ErrStoreReadOnly = errors.New("store is read-only")
	// ErrUnverified: a signature or a signed record does not verify against
	// a trusted key, or what it signed no longer matches.
	ErrUnverified = errors.New("not verified")
	// ErrCorrupt: stored data failed a consistency check (fsck, tarball hash).
	ErrCorrupt = errors.New("store corrupt")
	// ErrNotApproved: the image is not approved and the store requires approval.
	ErrNotApproved = errors.New("image not approved")
	// ErrUnsafe: refused because acting on it could escape a sandbox or root
	// (a layer writing outside its rootfs, a weaker sandbox than asked for).
	ErrUnsafe = errors.New("unsafe")
	// ErrReleaseRefused: the release airlock refuses what was asked: a
	// request, a vote or an export the site policy does not allow.
	ErrReleaseRefused = errors.New("release refused")
	// ErrNonFastForward: the remote has commits the local repo lacks.
	ErrNonFastForward = errors.New("non-fast-forward")
	// ErrDiverged: local and remote histories each have commits the other lacks.
	ErrDiverged = errors.New("diverged")
	// ErrUnsupported: the host or runtime cannot provide what was asked.
	ErrUnsupported = errors.New("unsupported")
	// ErrCommandNotFound: the command a container was to start is not in
	// its image; a run records exit status 127, as podman and shells do.
	ErrCommandNotFound = errors.New("command not found")
	// ErrNotExecutable: the command a container was to start is there but
	// could not be executed; a run records exit status 126.
	ErrNotExecutable = errors.New("command not executable")
)

// DigestMismatchError reports content whose sha256 is not the one it claims.
type DigestMismatchError struct {
	What string // what was being verified, e.g. "layer blob" or "tarball of repo default"
	Want string // the expected digest, "sha256:..."
	Got  string // the digest of the bytes actually seen
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("%s: digest mismatch: expected %s, got %s", e.What, e.Want, e.Got)
}

// Is lets errors.Is(err, ErrCorrupt) match a digest mismatch.
func (e *DigestMismatchError) Is(target error) bool { return target == ErrCorrupt }

// PosError is an error at a position in a text file: "PATH:LINE: message".
type PosError struct {
	Path string
	Line int
	Msg  string
}

func (e *PosError) Error() string {
	if e.Line <= 0 {
		return fmt.Sprintf("%s: %s", e.Path, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
}

// Is lets errors.Is(err, ErrInvalid) match any positioned input error.
func (e *PosError) Is(target error) bool { return target == ErrInvalid }

// Kinds of NameError.
const (
	NameRun    = "run"
	NameCommit = "commit"
	NameRepo   = "repo"
	NameImage  = "image"
)

// NameError is a run id, commit, repo or image name that runprov cannot
// use: it matches nothing (Err wraps ErrNotFound) or is malformed
// (ErrInvalid). Kind says which kind of name, so that the CLI can say where
// the names are listed.
type NameError struct {
	Kind string
	Err  error
}

func (e *NameError) Error() string { return e.Err.Error() }
func (e *NameError) Unwrap() error { return e.Err }
