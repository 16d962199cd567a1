package consumer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/runfile"
)

// Ref is a commit a name resolved to, before a Runfile is chosen.
type Ref struct {
	Repo string
	Hash string
	// Named is set when the name was a repository or HEAD, not a hash.
	Named bool
}

// ResolveRef finds the commit a name gives: a hash or unique prefix of one
// in the commit index; REPO, the head of that repository; REPO~N, N
// first-parent steps back from it; HEAD and HEAD~N, the same in repo (""
// means the store's only repository, else "default"). A repository name
// wins over a hash prefix spelled the same, as a branch does in git.
// Errors wrap core.ErrNotFound, core.ErrAmbiguous or core.ErrInvalid.
func (c *Consumer) ResolveRef(ctx context.Context, repo, name string) (Ref, error) {
	base, back, err := splitBack(name)
	if err != nil {
		return Ref{}, err
	}
	switch {
	case base == "HEAD":
		if repo == "" {
			if repo, err = c.headRepo(ctx); err != nil {
				return Ref{}, err
			}
		}
		return c.walkBack(ctx, repo, back)
	case base != "" && ValidRepoName(base) == nil:
		if _, err := c.Store.Repo(ctx, base); err == nil {
			return c.walkBack(ctx, base, back)
		} else if !errors.Is(err, core.ErrNotFound) {
			return Ref{}, err
		}
	}
	prefix := strings.ToLower(base)
	if strings.Contains(name, "~") || prefix == "" || strings.Trim(prefix, "0123456789abcdef") != "" || len(prefix) > 40 {
		return Ref{}, &core.NameError{Kind: core.NameCommit, Err: fmt.Errorf("%w: %q is not a commit hash or prefix (hex digits, as printed by runprov add or log), a repository name, REPO~N or HEAD~N", core.ErrNotFound, name)}
	}
	rows, err := c.Store.Commits(ctx, core.CommitFilter{Repo: repo, Prefix: prefix})
	if err != nil {
		return Ref{}, err
	}
	if len(rows) == 0 {
		return Ref{}, &core.NameError{Kind: core.NameCommit, Err: fmt.Errorf("commit %s: %w", prefix, core.ErrNotFound)}
	}
	hashes := map[string]bool{}
	for _, r := range rows {
		hashes[r.Hash] = true
	}
	if len(hashes) > 1 {
		return Ref{}, fmt.Errorf("commit prefix %s: %w: it matches %s; give more digits", prefix, core.ErrAmbiguous, listKeys(hashes, 7))
	}
	// The same commit may be indexed in two repos (pulled into both): the
	// objects are identical, so either row serves.
	return Ref{Repo: rows[0].Repo, Hash: rows[0].Hash}, nil
}

// splitBack cuts "NAME~N" into NAME and N; "NAME~" is NAME~1, as in git.
func splitBack(name string) (string, int, error) {
	base, n, ok := strings.Cut(name, "~")
	if !ok {
		return name, 0, nil
	}
	if n == "" {
		return base, 1, nil
	}
	back, err := strconv.Atoi(n)
	if err != nil || back < 0 {
		return "", 0, fmt.Errorf("%w: %q: want NAME~N with N a number of commits back, like HEAD~1", core.ErrInvalid, name)
	}
	return base, back, nil
}

// headRepo is the repository HEAD means without --repo: the only one, else
// the default one.
func (c *Consumer) headRepo(ctx context.Context) (string, error) {
	repos, err := c.Store.Repos(ctx)
	if err != nil {
		return "", err
	}
	names := map[string]bool{}
	for _, r := range repos {
		names[r.Name] = true
	}
	switch {
	case len(repos) == 1:
		return repos[0].Name, nil
	case names[core.DefaultRepo]:
		return core.DefaultRepo, nil
	case len(repos) == 0:
		return "", &core.NameError{Kind: core.NameRepo, Err: fmt.Errorf("HEAD: %w: the store has no repository yet", core.ErrNotFound)}
	}
	return "", ambiguousf("HEAD: the store has several repositories (%s); name one, like %s~1", listKeys(names, 0), repos[0].Name)
}

// walkBack follows first parents back from repo's head.
func (c *Consumer) walkBack(ctx context.Context, repo string, back int) (Ref, error) {
	art, err := c.Store.Repo(ctx, repo)
	if err != nil {
		return Ref{}, err
	}
	if art.Head == "" {
		return Ref{}, fmt.Errorf("repository %q: %w: it has no commit yet", repo, core.ErrNotFound)
	}
	ref := Ref{Repo: repo, Hash: art.Head, Named: true}
	if back == 0 {
		return ref, nil
	}
	g, err := c.openRead(ctx, art)
	if err != nil {
		return Ref{}, err
	}
	defer g.Close()
	for i := 0; i < back; i++ {
		info, err := g.Commit(ctx, ref.Hash)
		if err != nil {
			return Ref{}, err
		}
		if len(info.Parents) == 0 {
			return Ref{}, fmt.Errorf("%s~%d: %w: repository %q has only %d commits", repo, back, core.ErrNotFound, repo, i+1)
		}
		ref.Hash = info.Parents[0]
	}
	return ref, nil
}

// openRead restores a repository to read it: under the store's tmp, or the
// system's when the store is read-only.
func (c *Consumer) openRead(ctx context.Context, art *core.RepoArtifact) (core.GitRepo, error) {
	g, err := c.Git.OpenRepo(ctx, c.TmpDir, art.Tarball)
	if err != nil && errors.Is(err, os.ErrPermission) {
		g, err = c.Git.OpenRepo(ctx, os.TempDir(), art.Tarball)
	}
	if err != nil {
		return nil, fmt.Errorf("open repo %q: %w", art.Name, err)
	}
	return g, nil
}

// Resolve finds the commit and Runfile a spec names: "REF" or "REF:PATH",
// REF as ResolveRef reads it. Without PATH a hash means the Runfile the
// commit records, REPO or HEAD~N the repository's one Runfile; PATH may be any
// file of the commit's tree, not only one the commit changed. The row
// returned is the commit that last recorded that Runfile at or before the
// one named, so runs of the same Runfile name the same commit. Errors wrap
// core.ErrNotFound or core.ErrAmbiguous.
func (c *Consumer) Resolve(ctx context.Context, spec string) (core.Commit, error) {
	name, p, _ := strings.Cut(spec, ":")
	ref, err := c.ResolveRef(ctx, "", name)
	if err != nil {
		return core.Commit{}, err
	}
	if ref.Named && p == "" {
		// A repository name means its Runfile, whichever commit changed it.
		if p, err = c.onlyPath(ctx, ref, name); err != nil {
			return core.Commit{}, err
		}
	}
	rows, err := c.Store.Commits(ctx, core.CommitFilter{Repo: ref.Repo, Prefix: ref.Hash, Path: p})
	if err != nil {
		return core.Commit{}, err
	}
	paths := map[string]bool{}
	for _, r := range rows {
		paths[r.Path] = true
	}
	switch {
	case len(paths) == 1:
		return rows[0], nil
	case len(paths) > 1:
		return core.Commit{}, ambiguousf("commit %s records several Runfiles (%s); name one as %s:PATH", name, listKeys(paths, 0), name)
	case p == "":
		return core.Commit{}, fmt.Errorf("commit %s: %w: it records no Runfile; name a file as %s:PATH", name, core.ErrNotFound, name)
	}
	return c.treeRow(ctx, ref, p)
}

// onlyPath is the one Runfile path repository ref.Repo records.
func (c *Consumer) onlyPath(ctx context.Context, ref Ref, name string) (string, error) {
	rows, err := c.Store.Commits(ctx, core.CommitFilter{Repo: ref.Repo})
	if err != nil {
		return "", err
	}
	paths := map[string]bool{}
	for _, r := range rows {
		paths[r.Path] = true
	}
	switch len(paths) {
	case 0:
		return "", fmt.Errorf("%s: %w: repository %q records no Runfile", name, core.ErrNotFound, ref.Repo)
	case 1:
		return rows[0].Path, nil
	}
	return "", ambiguousf("%s: repository %q records several Runfiles (%s); name one as %s:PATH", name, ref.Repo, listKeys(paths, 0), name)
}

// treeRow is the row for file p in ref's tree: the newest indexed commit at
// or before ref that recorded the same bytes there, else a row made from
// git for ref itself.
func (c *Consumer) treeRow(ctx context.Context, ref Ref, p string) (core.Commit, error) {
	art, err := c.Store.Repo(ctx, ref.Repo)
	if err != nil {
		return core.Commit{}, err
	}
	g, err := c.openRead(ctx, art)
	if err != nil {
		return core.Commit{}, err
	}
	defer g.Close()
	data, blob, err := g.ReadFile(ctx, ref.Hash, p)
	if errors.Is(err, core.ErrNotFound) {
		return core.Commit{}, &core.NameError{Kind: core.NameCommit, Err: fmt.Errorf("commit %s has no file %s: %w", short(ref.Hash), p, core.ErrNotFound)}
	}
	if err != nil {
		return core.Commit{}, err
	}
	rows, err := c.Store.Commits(ctx, core.CommitFilter{Repo: ref.Repo, Path: p})
	if err != nil {
		return core.Commit{}, err
	}
	for _, r := range rows {
		if r.Blob != blob {
			continue
		}
		if ok, err := g.IsAncestor(ctx, r.Hash, ref.Hash); err == nil && ok {
			return r, nil
		}
	}
	info, err := g.Commit(ctx, ref.Hash)
	if err != nil {
		return core.Commit{}, err
	}
	row := core.Commit{Repo: ref.Repo, Hash: ref.Hash, Path: p, Blob: blob, Message: info.Message, Author: info.AuthorString(), Time: info.Author.When}
	// Any file may be read; one that is a Runfile names its image.
	if rf, err := runfile.Parse(p, data); err == nil {
		row.ImageRef, row.ImageDigest = rf.From.Ref, rf.From.Digest
	}
	return row, nil
}

// ambiguousError matches core.ErrAmbiguous with its own words: the name is
// not a prefix, it names several things.
type ambiguousError struct{ msg string }

func (e ambiguousError) Error() string        { return e.msg }
func (e ambiguousError) Is(target error) bool { return target == core.ErrAmbiguous }

func ambiguousf(format string, args ...any) error {
	return ambiguousError{fmt.Sprintf(format, args...)}
}

func listKeys(m map[string]bool, short int) string {
	var ks []string
	for k := range m {
		if short > 0 && len(k) > short {
			k = k[:short]
		}
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// Cat returns the file a spec names, read from git, and the commit row
// that names it.
func (c *Consumer) Cat(ctx context.Context, spec string) ([]byte, core.Commit, error) {
	row, err := c.Resolve(ctx, spec)
	if err != nil {
		return nil, core.Commit{}, err
	}
	art, err := c.Store.Repo(ctx, row.Repo)
	if err != nil {
		return nil, core.Commit{}, err
	}
	data, err := c.readFile(ctx, art, row)
	if err != nil {
		if errors.Is(err, core.ErrNotFound) {
			return nil, core.Commit{}, fmt.Errorf("%w: the index names %s:%s but repo %q lacks it", core.ErrCorrupt, row.Hash, row.Path, row.Repo)
		}
		return nil, core.Commit{}, err
	}
	return data, row, nil
}

// readFile reads row's Runfile from the repository artifact, in memory.
func (c *Consumer) readFile(ctx context.Context, art *core.RepoArtifact, row core.Commit) ([]byte, error) {
	data, _, err := c.Git.ReadRepoFile(ctx, art.Tarball, row.Hash, row.Path)
	return data, err
}

// History returns the commit index rows of the commit a spec names and of its
// ancestors, newest first, at most limit (0: all): "REF" or "REF:PATH"
// (only that Runfile), REF as ResolveRef reads it within repo.
func (c *Consumer) History(ctx context.Context, repo, spec string, limit int) ([]core.Commit, error) {
	name, p, _ := strings.Cut(spec, ":")
	ref, err := c.ResolveRef(ctx, repo, name)
	if err != nil {
		return nil, err
	}
	art, err := c.Store.Repo(ctx, ref.Repo)
	if err != nil {
		return nil, err
	}
	rows, err := c.Store.Commits(ctx, core.CommitFilter{Repo: ref.Repo, Path: p})
	if err != nil {
		return nil, err
	}
	if ref.Hash != art.Head {
		g, err := c.openRead(ctx, art)
		if err != nil {
			return nil, err
		}
		defer g.Close()
		kept := rows[:0]
		for _, r := range rows {
			if r.Hash == ref.Hash {
				kept = append(kept, r)
			} else if ok, err := g.IsAncestor(ctx, r.Hash, ref.Hash); err != nil {
				return nil, err
			} else if ok {
				kept = append(kept, r)
			}
		}
		rows = kept
	}
	if limit > 0 && len(rows) > limit {
		rows = rows[:limit]
	}
	return rows, nil
}
