package core

import "context"

// Remote names a git remote for one push, pull or add --from. It lives only
// as long as the call: it is never stored in the middleware, in a tarball's
// .git/config, or in a log line. Credentials are not part of it; the driver
// reads them from the environment at the time of the call.
type Remote struct {
	URL    string // file://, a plain path, http(s)://, ssh://, git:// or user@host:path
	SSHKey string // private key file for SSH; "" uses ssh-agent
}

// FileChange is a file a commit adds or changes.
type FileChange struct {
	Path string // slash-separated, relative to the repository root
	Blob string // git blob id of the new contents
}

// RemoteGitRepo is the optional ability of a GitRepo to exchange commits
// with a git remote (drivers/git). Callers find it by type assertion.
type RemoteGitRepo interface {
	GitRepo
	// Fetch resolves ref on the remote ("" is the remote's HEAD; a short
	// name is tried as a branch, then as a tag; "refs/..." is taken as is),
	// fetches the commit it names and its history into the object store,
	// and returns the commit hash and the full ref name. The local branch
	// does not move. A ref the remote lacks, or an empty remote, gives an
	// error wrapping ErrNotFound.
	Fetch(ctx context.Context, r Remote, ref string) (commit, refName string, err error)
	// Push sends the local branch to branch on the remote and returns the
	// commit the remote branch held before ("" when it was new). When the
	// remote branch holds commits the local one lacks, Push refuses with an
	// error wrapping ErrNonFastForward unless force is set.
	Push(ctx context.Context, r Remote, branch string, force bool) (old string, err error)
	// NewCommits returns the commits reachable from to but not from from
	// ("" for none), every parent before its children.
	NewCommits(ctx context.Context, from, to string) ([]CommitInfo, error)
	// Changes returns the regular files commit adds or changes compared
	// with every one of its parents (all of them for a root commit), by path.
	Changes(ctx context.Context, commit string) ([]FileChange, error)
	// SetHead moves the branch to commit, which must be in the object
	// store, and compacts the object store.
	SetHead(ctx context.Context, commit string) error
}
