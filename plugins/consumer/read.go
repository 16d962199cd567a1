package consumer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/runprov/runprov/core"
)

// Resolve finds the commit named by a hash prefix and, optionally, a path:
// "PREFIX" or "PREFIX:PATH". A commit that indexes several Runfiles needs
// the path. Errors wrap core.ErrNotFound or core.ErrAmbiguous.
func (c *Consumer) Resolve(ctx context.Context, spec string) (core.Commit, error) {
	prefix, p, _ := strings.Cut(spec, ":")
	prefix = strings.ToLower(prefix)
	if prefix == "" || strings.Trim(prefix, "0123456789abcdef") != "" || len(prefix) > 40 {
		return core.Commit{}, fmt.Errorf("%w: %q is not a commit hash or prefix (hex digits, as printed by runprov add or log)", core.ErrInvalid, spec)
	}
	rows, err := c.Store.Commits(ctx, core.CommitFilter{Prefix: prefix, Path: p})
	if err != nil {
		return core.Commit{}, err
	}
	if len(rows) == 0 {
		if p != "" {
			return core.Commit{}, &core.NameError{Kind: core.NameCommit, Err: fmt.Errorf("commit %s with Runfile %s: %w", prefix, p, core.ErrNotFound)}
		}
		return core.Commit{}, &core.NameError{Kind: core.NameCommit, Err: fmt.Errorf("commit %s: %w", prefix, core.ErrNotFound)}
	}
	hashes := map[string]bool{}
	paths := map[string]bool{}
	for _, r := range rows {
		hashes[r.Hash] = true
		paths[r.Path] = true
	}
	if len(hashes) > 1 {
		return core.Commit{}, fmt.Errorf("commit prefix %s: %w: it matches %s; give more digits", prefix, core.ErrAmbiguous, listKeys(hashes, 7))
	}
	if len(paths) > 1 {
		return core.Commit{}, fmt.Errorf("commit %s: %w: it records several Runfiles (%s); name one as %s:PATH", prefix, core.ErrAmbiguous, listKeys(paths, 0), prefix)
	}
	// The same commit may be indexed in two repos (pulled into both): the
	// objects are identical, so either row serves.
	return rows[0], nil
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

// Cat returns the Runfile bytes recorded at a commit, read from git, and the
// commit row that names them.
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
