package consumer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/runfile"
)

// RepoStore is the middleware's side of Runfile repositories (drivers/sqlite).
type RepoStore interface {
	// UpdateRepo runs fn with the current artifact of repo name (nil when the
	// repo does not exist yet) while holding the store's write lock, then
	// stores the update fn returns in the same transaction. If fn or the store
	// fails, nothing is written. A nil update with a nil error writes nothing.
	// Returns an error wrapping core.ErrBusy when the lock cannot be had in time.
	UpdateRepo(ctx context.Context, name string, fn func(ctx context.Context, cur *core.RepoArtifact) (*core.RepoUpdate, error)) error
	// Repo returns the stored artifact of name, or an error wrapping core.ErrNotFound.
	Repo(ctx context.Context, name string) (*core.RepoArtifact, error)
	// Repos returns every repository without its tarball, by name.
	Repos(ctx context.Context) ([]core.RepoArtifact, error)
	// Commits returns commit rows matching f, newest first.
	Commits(ctx context.Context, f core.CommitFilter) ([]core.Commit, error)
}

// Consumer commits Runfiles into repositories kept in the middleware.
type Consumer struct {
	Store RepoStore
	Git   core.RepoOpener
	// Salvager checks object stores in fsck and rebuilds them in Repair.
	Salvager core.RepoSalvager
	TmpDir   string // where repositories are restored while in use
	Log      *slog.Logger
}

var repoNameRE = core.LazyRegexp(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidRepoName checks a repository name given with --repo.
func ValidRepoName(name string) error {
	if !repoNameRE().MatchString(name) {
		return fmt.Errorf("%w: repo name %q: use 1-64 of a-z 0-9 . _ - starting with a letter or digit", core.ErrInvalid, name)
	}
	return nil
}

// AddRequest is one Runfile to commit.
type AddRequest struct {
	Repo    string // repository name; core.DefaultRepo when empty
	Path    string // slash-separated path inside the repository
	Source  string // where the bytes came from, for error messages
	Data    []byte
	Message string // default "Add PATH" or "Update PATH"; a RunfileTrailer naming Path is appended
	Author  core.Signature
}

// AddResult is the commit that holds the Runfile.
type AddResult struct {
	core.Commit
	// Unchanged is set when the repository already held these exact bytes at
	// Path: no commit was made and Commit is the head.
	Unchanged bool
}

// Add validates req.Data as a Runfile and commits it. The new tarball and the
// commit's index row are stored in one transaction; on any error the store is
// left as it was.
func (c *Consumer) Add(ctx context.Context, req AddRequest) (AddResult, error) {
	if req.Repo == "" {
		req.Repo = core.DefaultRepo
	}
	if err := ValidRepoName(req.Repo); err != nil {
		return AddResult{}, err
	}
	if req.Path == "" || strings.HasPrefix(req.Path, "/") || path.Clean(req.Path) != req.Path || !cleanRepoPath(req.Path) {
		return AddResult{}, fmt.Errorf("%w: path in repo %q must be relative and clean, like analysis/Runfile", core.ErrInvalid, req.Path)
	}
	rf, err := runfile.Parse(req.Source, req.Data)
	if err != nil {
		return AddResult{}, err
	}
	var res AddResult
	err = c.Store.UpdateRepo(ctx, req.Repo, func(ctx context.Context, cur *core.RepoArtifact) (*core.RepoUpdate, error) {
		var tarball []byte
		if cur != nil {
			tarball = cur.Tarball
		}
		repo, err := c.Git.OpenRepo(ctx, c.TmpDir, tarball)
		if err != nil {
			return nil, fmt.Errorf("open repo %q: %w", req.Repo, err)
		}
		defer repo.Close()
		head, err := repo.Head(ctx)
		if err != nil {
			return nil, err
		}
		msg := req.Message
		if head != "" {
			old, blob, err := repo.ReadFile(ctx, head, req.Path)
			if err != nil && !errors.Is(err, core.ErrNotFound) {
				return nil, err
			}
			if err == nil && bytes.Equal(old, req.Data) {
				// Nothing to commit: answer with the commit that last
				// recorded these bytes at this path, as git log -1 would.
				rows, err := c.Store.Commits(ctx, core.CommitFilter{Repo: req.Repo, Path: req.Path, Limit: 1})
				if err != nil {
					return nil, err
				}
				if len(rows) == 1 && rows[0].Blob == blob {
					res = AddResult{Commit: rows[0], Unchanged: true}
					return nil, nil
				}
			}
			if msg == "" && err == nil {
				msg = "Update " + req.Path
			}
		}
		if msg == "" {
			msg = "Add " + req.Path
		}
		// The trailer names the Runfile in the commit itself, so a pull
		// elsewhere indexes it whatever its path.
		info, err := repo.CommitFile(ctx, req.Path, req.Data, withTrailer(msg, req.Path), req.Author)
		if err != nil {
			return nil, fmt.Errorf("commit %s to repo %q: %w", req.Path, req.Repo, err)
		}
		_, blob, err := repo.ReadFile(ctx, info.Hash, req.Path)
		if err != nil {
			return nil, err
		}
		tar, err := repo.Archive(ctx)
		if err != nil {
			return nil, err
		}
		res.Commit = indexRow(req.Repo, req.Path, blob, rf, info)
		return &core.RepoUpdate{Tarball: tar, Head: info.Hash, Commits: []core.Commit{res.Commit}}, nil
	})
	if err != nil {
		return AddResult{}, err
	}
	return res, nil
}

// indexRow builds the commit-index row for a Runfile at a commit.
func indexRow(repo, p, blob string, rf *runfile.File, info core.CommitInfo) core.Commit {
	return core.Commit{
		Repo:        repo,
		Hash:        info.Hash,
		Path:        p,
		Blob:        blob,
		ImageRef:    rf.From.Ref,
		ImageDigest: rf.From.Digest,
		Message:     info.Message,
		Author:      info.AuthorString(),
		Time:        info.Author.When,
	}
}

// ChooseRepo picks the repository for a Runfile added without --repo, so
// that the default repository does not mix unrelated analyses: dir is the
// name of the directory the Runfile was read from, p its path in the
// repository. It is the repository named after dir when one exists; else
// the default one, unless that already holds a Runfile at p pinning another
// image name (another analysis), which then goes to a new repository named
// after dir; why says so ("" otherwise).
func (c *Consumer) ChooseRepo(ctx context.Context, dir, p string, data []byte) (repo, why string, err error) {
	named := RepoNameFor(dir)
	if named == "" {
		return core.DefaultRepo, "", nil
	}
	if _, err := c.Store.Repo(ctx, named); err == nil {
		return named, "", nil
	} else if !errors.Is(err, core.ErrNotFound) {
		return "", "", err
	}
	rows, err := c.Store.Commits(ctx, core.CommitFilter{Repo: core.DefaultRepo, Path: p, Limit: 1})
	if err != nil {
		return "", "", err
	}
	rf, err := runfile.Parse(p, data)
	if err != nil {
		return core.DefaultRepo, "", nil // Add refuses it, naming the file as given
	}
	if len(rows) == 0 || imageName(rows[0].ImageRef) == imageName(rf.From.Ref) {
		return core.DefaultRepo, "", nil
	}
	why = fmt.Sprintf("repo %s already holds another analysis at %s (its Runfile pins %s, this one %s)",
		core.DefaultRepo, p, imageName(rows[0].ImageRef), imageName(rf.From.Ref))
	return named, why, nil
}

// RepoNameFor makes a repository name of a directory name: lower case, other
// characters than a-z 0-9 . _ - as "-"; "" when nothing usable is left.
func RepoNameFor(dir string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(dir) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteRune('-')
		}
	}
	name := strings.Trim(b.String(), ".-_")
	if len(name) > 64 {
		name = name[:64]
	}
	if ValidRepoName(name) != nil || name == core.DefaultRepo {
		return ""
	}
	return name
}

// imageName is an image reference without its digest and tag.
func imageName(ref string) string {
	name, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	return name
}
