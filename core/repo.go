package core

import (
	"context"
	"time"
)

// DefaultRepo is the repository name used when --repo is not given.
const DefaultRepo = "default"

// DefaultBranch is the branch Runfile repositories commit to.
const DefaultBranch = "main"

// Signature is a git author: who and when.
type Signature struct {
	Name  string
	Email string
	When  time.Time
}

// Commit is one row of the commit index: a commit of a Runfile repository
// and one Runfile it adds or changes. A commit that changes two Runfiles has
// two rows.
type Commit struct {
	Repo        string    `json:"repo"`
	Hash        string    `json:"commit"`
	Path        string    `json:"path"`
	Blob        string    `json:"blob"`         // git blob id of the Runfile at this commit
	ImageRef    string    `json:"image_ref"`    // FROM as written, ARG defaults expanded
	ImageDigest string    `json:"image_digest"` // "sha256:<64 hex>"
	Message     string    `json:"message"`
	Author      string    `json:"author"` // "Name <email>"
	Time        time.Time `json:"time"`   // author time
}

// CommitFilter selects rows of the commit index. Zero values select all.
type CommitFilter struct {
	Repo   string
	Path   string
	Prefix string // commit hash prefix
	Limit  int
}

// RepoArtifact is a Runfile repository as the middleware keeps it: the
// container_run_commands tarball of its .git plus what is derived from it.
type RepoArtifact struct {
	Name      string    `json:"name"`
	Tarball   []byte    `json:"-"`
	SHA256    string    `json:"tarball_sha256"` // hex
	Size      int64     `json:"tarball_size"`
	Head      string    `json:"head"` // commit at the tip of Branch, "" when empty
	Branch    string    `json:"branch"`
	UpdatedAt time.Time `json:"updated_at"`
}

// RepoUpdate is what one consumer operation writes: the new tarball, the new
// head and the commit rows it adds. It is stored in one transaction.
type RepoUpdate struct {
	Tarball []byte
	Head    string
	Commits []Commit
	// Reorder lets Commits name rows the repo already indexes: those keep
	// their values and, like the new rows, take Commits' order (oldest
	// first). No row is ever removed.
	Reorder bool
}

// CommitInfo is what git says of one commit.
type CommitInfo struct {
	Hash    string
	Parents []string
	Message string
	Author  Signature
}

// AuthorString formats the author as git does: "Name <email>".
func (c CommitInfo) AuthorString() string { return c.Author.Name + " <" + c.Author.Email + ">" }

// GitRepo is a Runfile repository restored from its tarball into a private
// directory (drivers/git). It is not safe for concurrent use. Close removes
// the directory.
type GitRepo interface {
	// Head returns the commit at the tip of the branch, "" for an empty repo.
	Head(ctx context.Context) (string, error)
	// CommitFile records data at path (slash-separated, relative) on top of
	// the head and moves the branch to the new commit.
	CommitFile(ctx context.Context, path string, data []byte, message string, author Signature) (CommitInfo, error)
	// Commit returns what git says of commit hash (full hash), or ErrNotFound.
	Commit(ctx context.Context, hash string) (CommitInfo, error)
	// ReadFile returns path at commit and its blob id, or ErrNotFound.
	ReadFile(ctx context.Context, commit, path string) (data []byte, blob string, err error)
	// IsAncestor reports whether commit a is reachable from commit b.
	IsAncestor(ctx context.Context, a, b string) (bool, error)
	// Archive returns the tarball of the repository's .git, the value kept in
	// container_run_commands.
	Archive(ctx context.Context) ([]byte, error)
	Close() error

	// What a repository exchanges with git remotes:

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

// RepoOpener opens Runfile repositories from their tarballs (drivers/git).
type RepoOpener interface {
	// OpenRepo restores tarball into a new private directory under tmpDir and
	// opens it. A nil tarball creates a new, empty repository. A tarball that
	// is not a safe tar of a .git directory is refused with ErrCorrupt.
	OpenRepo(ctx context.Context, tmpDir string, tarball []byte) (GitRepo, error)
	// ReadRepoFile reads one file of one commit straight from a tarball,
	// without restoring it to disk: the file's bytes and blob id; errors as
	// GitRepo.ReadFile and OpenRepo give them.
	ReadRepoFile(ctx context.Context, tarball []byte, commit, filePath string) ([]byte, string, error)
}
