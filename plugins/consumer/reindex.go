package consumer

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/runprov/runprov/core"
)

// ReindexResult is what Reindex did to one repository.
type ReindexResult struct {
	Repo    string        `json:"repo"`
	Head    string        `json:"head"`
	Commits int           `json:"commits"` // commits on the branch, all walked
	Indexed []core.Commit `json:"indexed"` // rows added, oldest first
	// Skipped names files a trailer, glob or indexed path selects that are
	// not valid Runfiles; they stay unindexed.
	Skipped []string `json:"skipped"`
}

// Reindex rebuilds the commit index of repository name, or of every
// repository when name is "", from its git history: each commit's Runfiles
// are selected as a pull with the default globs selects them (trailers,
// indexed paths, globs, content) and the rows the index lacks are added.
// Rows already there are kept, so running it again changes nothing; the
// repo's rows are renumbered into history order so that log lists them as
// git does. A missing repository gives an error wrapping core.ErrNotFound.
func (c *Consumer) Reindex(ctx context.Context, name string) ([]ReindexResult, error) {
	names, err := c.repoNames(ctx, name)
	if err != nil {
		return nil, err
	}
	var out []ReindexResult
	for _, n := range names {
		res, err := c.reindexRepo(ctx, n)
		if err != nil {
			return out, err
		}
		out = append(out, res)
	}
	return out, nil
}

// reindexRepo walks the history outside the write lock, as a pull fetches,
// and writes only if the tarball is still the one walked.
func (c *Consumer) reindexRepo(ctx context.Context, name string) (ReindexResult, error) {
	for attempt := 0; ; attempt++ {
		res, err := c.reindexOnce(ctx, name)
		if !errors.Is(err, errRepoMoved) {
			return res, err
		}
		if attempt > 0 {
			return ReindexResult{}, fmt.Errorf("reindex: %w: repo %q changed twice while reindexing (another runprov is writing to it); nothing was changed: run the command again", core.ErrBusy, name)
		}
	}
}

func (c *Consumer) reindexOnce(ctx context.Context, name string) (ReindexResult, error) {
	res := ReindexResult{Repo: name}
	art, err := c.Store.Repo(ctx, name)
	if err != nil {
		return res, &core.NameError{Kind: core.NameRepo, Err: fmt.Errorf("reindex: %w", err)}
	}
	res.Head = art.Head
	if art.Head == "" {
		return res, nil
	}
	g, err := c.openRemote(ctx, name, art.Tarball)
	if err != nil {
		return res, err
	}
	defer g.Close()
	commits, err := g.NewCommits(ctx, "", art.Head)
	if err != nil {
		return res, fmt.Errorf("reindex repo %q: %w", name, err)
	}
	res.Commits = len(commits)
	have, err := c.Store.Commits(ctx, core.CommitFilter{Repo: name})
	if err != nil {
		return res, err
	}
	sel, err := newSelector(nil)
	if err != nil {
		return res, err
	}
	sel.known.add(have)
	rows, bad, err := c.scanCommits(ctx, g, name, commits, sel)
	if err != nil {
		return res, fmt.Errorf("reindex repo %q: %w", name, err)
	}
	for _, b := range bad {
		res.Skipped = append(res.Skipped, b.Error())
	}
	err = c.Store.UpdateRepo(ctx, name, func(ctx context.Context, cur *core.RepoArtifact) (*core.RepoUpdate, error) {
		if cur == nil || cur.SHA256 != art.SHA256 {
			return nil, errRepoMoved
		}
		// Read again under the lock: a concurrent reindex may have added
		// some of the rows already.
		have, err := c.Store.Commits(ctx, core.CommitFilter{Repo: name})
		if err != nil {
			return nil, err
		}
		res.Indexed = missingRows(rows, have)
		if len(res.Indexed) == 0 {
			return nil, nil
		}
		return &core.RepoUpdate{Tarball: cur.Tarball, Head: cur.Head, Commits: historyOrder(commits, rows, have), Reorder: true}, nil
	})
	return res, err
}

type rowKey struct{ hash, path string }

// missingRows returns the rows have lacks, in order.
func missingRows(rows, have []core.Commit) []core.Commit {
	seen := map[rowKey]bool{}
	for _, h := range have {
		seen[rowKey{h.Hash, h.Path}] = true
	}
	var out []core.Commit
	for _, r := range rows {
		if !seen[rowKey{r.Hash, r.Path}] {
			out = append(out, r)
		}
	}
	return out
}

// historyOrder merges the found rows with the indexed rows of commits on
// the branch, oldest commit first and by path within one. Indexed rows of
// commits off the branch are left out, and so keep their place below.
func historyOrder(commits []core.CommitInfo, rows, have []core.Commit) []core.Commit {
	pos := make(map[string]int, len(commits))
	for i, ci := range commits {
		pos[ci.Hash] = i
	}
	all := map[rowKey]core.Commit{}
	for _, r := range append(append([]core.Commit(nil), have...), rows...) {
		if _, ok := pos[r.Hash]; !ok {
			continue
		}
		if _, dup := all[rowKey{r.Hash, r.Path}]; !dup {
			all[rowKey{r.Hash, r.Path}] = r
		}
	}
	out := make([]core.Commit, 0, len(all))
	for _, r := range all {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if pos[out[i].Hash] != pos[out[j].Hash] {
			return pos[out[i].Hash] < pos[out[j].Hash]
		}
		return out[i].Path < out[j].Path
	})
	return out
}

// repoNames is name alone (checked), or every repository when it is "".
func (c *Consumer) repoNames(ctx context.Context, name string) ([]string, error) {
	if name != "" {
		if err := ValidRepoName(name); err != nil {
			return nil, err
		}
		return []string{name}, nil
	}
	repos, err := c.Store.Repos(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(repos))
	for _, r := range repos {
		names = append(names, r.Name)
	}
	return names, nil
}
