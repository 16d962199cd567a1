package git

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/runprov/runprov/core"
)

// Opener restores Runfile repositories from tarballs.
type Opener struct{}

var _ core.RepoOpener = Opener{}

// branchRef is the one branch a Runfile repository has.
var branchRef = plumbing.NewBranchReferenceName(core.DefaultBranch)

// OpenRepo implements core.RepoOpener.
func (Opener) OpenRepo(ctx context.Context, tmpDir string, tarball []byte) (core.GitRepo, error) {
	dir, err := core.MkdirTemp(tmpDir, "repo")
	if err != nil {
		return nil, fmt.Errorf("open repo: %w", err)
	}
	r, err := openDir(dir, tarball)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return r, nil
}

func openDir(dir string, tarball []byte) (*Repo, error) {
	gitDir := filepath.Join(dir, gitDirName)
	if tarball != nil {
		if err := restoreDir(tarball, dir); err != nil {
			return nil, err
		}
	}
	st := newStorage(gitDir)
	var (
		r   *gogit.Repository
		err error
	)
	if tarball == nil {
		r, err = gogit.InitWithOptions(st, nil, gogit.InitOptions{DefaultBranch: branchRef})
	} else {
		r, err = gogit.Open(st, nil)
		if err != nil {
			err = fmt.Errorf("%w: the tarball does not hold a git repository: %v", core.ErrCorrupt, err)
		}
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Repo{dir: dir, repo: r, st: st}, nil
}

// newStorage is go-git's storage of gitDir, keeping pack files open and
// in memory: a commit reads its parent's tree through a delta chain up to
// 50 deep, a push or a pull thousands of objects, and go-git otherwise
// opens the pack (and lstat's its path) and reads it in small pieces for
// each object.
func newStorage(gitDir string) *filesystem.Storage {
	return filesystem.NewStorageWithOptions(newGitFS(gitDir), cache.NewObjectLRUDefault(), filesystem.Options{KeepDescriptors: true})
}

// reopen replaces the storage and repository handles with fresh ones.
func (r *Repo) reopen() error {
	st := newStorage(filepath.Join(r.dir, gitDirName))
	repo, err := gogit.Open(st, nil)
	if err != nil {
		return fmt.Errorf("reopen repository after compaction: %w", err)
	}
	r.st.Close()
	r.st, r.repo, r.commits = st, repo, nil
	return nil
}

// Repo is a Runfile repository restored into a private directory.
type Repo struct {
	dir  string
	repo *gogit.Repository
	st   *filesystem.Storage
	// commits caches decoded commits: a pull reads each new commit in the
	// walk, again for its changes and its parent's, and again for its files.
	// Emptied on reopen, as a commit reads its tree through the storage.
	commits map[plumbing.Hash]*object.Commit
}

// maxCachedCommits bounds Repo.commits.
const maxCachedCommits = 1 << 16

// commitObject is r.repo.CommitObject through the cache.
func (r *Repo) commitObject(h plumbing.Hash) (*object.Commit, error) {
	if c, ok := r.commits[h]; ok {
		return c, nil
	}
	c, err := r.repo.CommitObject(h)
	if err != nil {
		return nil, err
	}
	if r.commits == nil || len(r.commits) >= maxCachedCommits {
		r.commits = map[plumbing.Hash]*object.Commit{}
	}
	r.commits[h] = c
	return c, nil
}

var _ core.GitRepo = (*Repo)(nil)

// Dir is the directory holding .git; drivers working on remotes use it.
func (r *Repo) Dir() string { return r.dir }

// Repository exposes the go-git repository to the rest of this driver.
func (r *Repo) Repository() *gogit.Repository { return r.repo }

// Close removes the private directory.
func (r *Repo) Close() error {
	r.st.Close()
	return os.RemoveAll(r.dir)
}

// Head implements core.GitRepo.
func (r *Repo) Head(ctx context.Context) (string, error) {
	ref, err := r.repo.Reference(branchRef, true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", branchRef, err)
	}
	return ref.Hash().String(), nil
}

// CommitFile implements core.GitRepo. It writes the blob, the trees on the
// path and the commit directly into the object store.
func (r *Repo) CommitFile(ctx context.Context, filePath string, data []byte, message string, author core.Signature) (core.CommitInfo, error) {
	parts, err := splitRepoPath(filePath)
	if err != nil {
		return core.CommitInfo{}, err
	}
	head, err := r.Head(ctx)
	if err != nil {
		return core.CommitInfo{}, err
	}
	var (
		root    *object.Tree
		parents []plumbing.Hash
	)
	if head != "" {
		c, err := r.commitObject(plumbing.NewHash(head))
		if err != nil {
			return core.CommitInfo{}, fmt.Errorf("read head commit: %w", err)
		}
		if root, err = c.Tree(); err != nil {
			return core.CommitInfo{}, fmt.Errorf("read head tree: %w", err)
		}
		parents = []plumbing.Hash{c.Hash}
	}
	blob, err := r.writeBlob(data)
	if err != nil {
		return core.CommitInfo{}, err
	}
	treeHash, err := r.writeTreeWith(root, parts, blob)
	if err != nil {
		return core.CommitInfo{}, err
	}
	sig := object.Signature{Name: author.Name, Email: author.Email, When: author.When}
	commit := &object.Commit{Author: sig, Committer: sig, Message: message, TreeHash: treeHash, ParentHashes: parents}
	obj := r.st.NewEncodedObject()
	if err := commit.Encode(obj); err != nil {
		return core.CommitInfo{}, err
	}
	h, err := r.st.SetEncodedObject(obj)
	if err != nil {
		return core.CommitInfo{}, fmt.Errorf("write commit: %w", err)
	}
	if err := r.st.SetReference(plumbing.NewHashReference(branchRef, h)); err != nil {
		return core.CommitInfo{}, fmt.Errorf("move %s: %w", branchRef, err)
	}
	if err := r.compact(); err != nil {
		return core.CommitInfo{}, err
	}
	return r.Commit(ctx, h.String())
}

func (r *Repo) writeBlob(data []byte) (plumbing.Hash, error) {
	obj := r.st.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(data); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	h, err := r.st.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write blob: %w", err)
	}
	return h, nil
}

// writeTreeWith writes a copy of tree (nil: empty) in which parts names the
// blob, creating or replacing the trees along the way, and returns its hash.
func (r *Repo) writeTreeWith(tree *object.Tree, parts []string, blob plumbing.Hash) (plumbing.Hash, error) {
	var entries []object.TreeEntry
	if tree != nil {
		entries = append(entries, tree.Entries...)
	}
	name := parts[0]
	idx := -1
	for i, e := range entries {
		if e.Name == name {
			idx = i
		}
	}
	entry := object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: blob}
	if len(parts) > 1 {
		var sub *object.Tree
		if idx >= 0 && entries[idx].Mode == filemode.Dir {
			t, err := r.repo.TreeObject(entries[idx].Hash)
			if err != nil {
				return plumbing.ZeroHash, fmt.Errorf("read tree %s: %w", name, err)
			}
			sub = t
		}
		h, err := r.writeTreeWith(sub, parts[1:], blob)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entry = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
	}
	if idx >= 0 {
		entries[idx] = entry
	} else {
		entries = append(entries, entry)
	}
	sortTreeEntries(entries)
	obj := r.st.NewEncodedObject()
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return r.st.SetEncodedObject(obj)
}

// sortTreeEntries orders entries as git does: by name, with a directory
// compared as if its name ended in "/".
func sortTreeEntries(es []object.TreeEntry) {
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(es, func(i, j int) bool { return key(es[i]) < key(es[j]) })
}

// splitRepoPath checks a slash-separated path inside the repository.
func splitRepoPath(p string) ([]string, error) {
	if p == "" || strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "." {
		return nil, fmt.Errorf("%w: path %q in the repo must be relative and clean, like dir/Runfile", core.ErrInvalid, p)
	}
	parts := strings.Split(p, "/")
	for _, s := range parts {
		if s == ".." || s == ".git" {
			return nil, fmt.Errorf("%w: path %q in the repo may not contain %q", core.ErrInvalid, p, s)
		}
	}
	return parts, nil
}

// Commit implements core.GitRepo.
func (r *Repo) Commit(ctx context.Context, hash string) (core.CommitInfo, error) {
	c, err := r.commitObject(plumbing.NewHash(hash))
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return core.CommitInfo{}, fmt.Errorf("commit %s: %w", hash, core.ErrNotFound)
	}
	if err != nil {
		return core.CommitInfo{}, fmt.Errorf("read commit %s: %w", hash, err)
	}
	return commitInfo(c), nil
}

func commitInfo(c *object.Commit) core.CommitInfo {
	info := core.CommitInfo{
		Hash:    c.Hash.String(),
		Message: c.Message,
		Author:  core.Signature{Name: c.Author.Name, Email: c.Author.Email, When: c.Author.When},
	}
	for _, p := range c.ParentHashes {
		info.Parents = append(info.Parents, p.String())
	}
	return info
}

// ReadFile implements core.GitRepo.
func (r *Repo) ReadFile(ctx context.Context, commit, filePath string) ([]byte, string, error) {
	c, err := r.commitObject(plumbing.NewHash(commit))
	if err != nil {
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return nil, "", fmt.Errorf("commit %s: %w", commit, core.ErrNotFound)
		}
		return nil, "", err
	}
	f, err := c.File(filePath)
	if errors.Is(err, object.ErrFileNotFound) {
		return nil, "", fmt.Errorf("%s:%s: %w", commit, filePath, core.ErrNotFound)
	}
	if err != nil {
		return nil, "", err
	}
	rd, err := f.Reader()
	if err != nil {
		return nil, "", err
	}
	defer rd.Close()
	data, err := io.ReadAll(rd)
	return data, f.Hash.String(), err
}

// IsAncestor implements core.GitRepo.
func (r *Repo) IsAncestor(ctx context.Context, a, b string) (bool, error) {
	if a == b {
		return true, nil
	}
	ca, err := r.commitObject(plumbing.NewHash(a))
	if err != nil {
		return false, fmt.Errorf("commit %s: %w", a, core.ErrNotFound)
	}
	cb, err := r.commitObject(plumbing.NewHash(b))
	if err != nil {
		return false, fmt.Errorf("commit %s: %w", b, core.ErrNotFound)
	}
	return ca.IsAncestor(cb)
}

// Archive implements core.GitRepo.
func (r *Repo) Archive(ctx context.Context) ([]byte, error) {
	return archiveDir(r.dir)
}
