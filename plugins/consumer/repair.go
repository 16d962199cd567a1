package consumer

import (
	"context"
	"errors"
	"fmt"

	"github.com/runprov/runprov/core"
)

// RepairResult is what a repair found and did in one repository.
type RepairResult struct {
	Repo string `json:"repo"`
	// Rebuilt is set when the repository's object store was damaged and was
	// replaced by one rebuilt from every object that could still be read.
	Rebuilt bool            `json:"rebuilt"`
	Scan    core.ObjectScan `json:"scan"`
	OldHead string          `json:"old_head"`
	Head    string          `json:"head"`
	// Kept counts commit rows whose Runfile reads back; Lost lists those
	// whose Runfile could not be recovered. Their rows stay in the index.
	Kept int          `json:"kept"`
	Lost []LostCommit `json:"lost"`
}

// LostCommit is a commit row whose Runfile cannot be read after a repair.
type LostCommit struct {
	Hash string `json:"hash"`
	Path string `json:"path"`
	Why  string `json:"why"`
}

// Repair checks the object store of the repository named (every one when
// name is empty) by reading each object without trusting the pack indexes.
// A damaged repository is rebuilt from every object that can still be read,
// its branch left where it was, and stored in place of the old tarball in
// one transaction. Commit rows are never removed: each one whose Runfile
// cannot be read back is listed in Lost. A repository that reads whole is
// left as it is.
func (c *Consumer) Repair(ctx context.Context, name string) ([]RepairResult, error) {
	if c.Salvager == nil {
		return nil, errors.New("repair: no salvager configured")
	}
	names, err := c.repoNames(ctx, name)
	if err != nil {
		return nil, err
	}
	var out []RepairResult
	for _, n := range names {
		res, err := c.repairRepo(ctx, n)
		if err != nil {
			return out, fmt.Errorf("repair repo %q: %w", n, err)
		}
		out = append(out, res)
	}
	return out, nil
}

func (c *Consumer) repairRepo(ctx context.Context, name string) (RepairResult, error) {
	res := RepairResult{Repo: name}
	err := c.Store.UpdateRepo(ctx, name, func(ctx context.Context, cur *core.RepoArtifact) (*core.RepoUpdate, error) {
		if cur == nil {
			return nil, fmt.Errorf("repo %q: %w", name, core.ErrNotFound)
		}
		rows, err := c.Store.Commits(ctx, core.CommitFilter{Repo: name})
		if err != nil {
			return nil, err
		}
		res.OldHead, res.Head = cur.Head, cur.Head
		scan, err := c.Salvager.ScanObjects(ctx, c.TmpDir, cur.Tarball)
		if err != nil {
			return nil, err
		}
		res.Scan = scan
		if !scan.Damaged() && c.rowsReadable(ctx, cur.Tarball, rows) {
			res.Kept = len(rows)
			return nil, nil
		}
		repo, scan, err := c.Salvager.Salvage(ctx, c.TmpDir, cur.Tarball)
		if err != nil {
			return nil, err
		}
		defer repo.Close()
		res.Scan, res.Rebuilt = scan, true
		res.Kept, res.Lost = sortRows(ctx, repo, rows)
		tar, err := repo.Archive(ctx)
		if err != nil {
			return nil, err
		}
		return &core.RepoUpdate{Tarball: tar, Head: res.Head}, nil
	})
	return res, err
}

// rowsReadable reports whether every row's Runfile reads through the
// repository as it is.
func (c *Consumer) rowsReadable(ctx context.Context, tarball []byte, rows []core.Commit) bool {
	repo, err := c.Git.OpenRepo(ctx, c.TmpDir, tarball)
	if err != nil {
		return false
	}
	defer repo.Close()
	_, lost := sortRows(ctx, repo, rows)
	return len(lost) == 0
}

// sortRows splits rows into those whose Runfile reads back with the
// recorded blob and those that do not.
func sortRows(ctx context.Context, repo core.GitRepo, rows []core.Commit) (int, []LostCommit) {
	kept, lost := 0, []LostCommit{}
	for _, row := range rows {
		if _, err := repo.Commit(ctx, row.Hash); err != nil {
			lost = append(lost, LostCommit{Hash: row.Hash, Path: row.Path, Why: "the commit object is gone"})
			continue
		}
		_, blob, err := repo.ReadFile(ctx, row.Hash, row.Path)
		switch {
		case err != nil:
			lost = append(lost, LostCommit{Hash: row.Hash, Path: row.Path, Why: fmt.Sprintf("the Runfile cannot be read: %v", err)})
		case blob != row.Blob:
			lost = append(lost, LostCommit{Hash: row.Hash, Path: row.Path, Why: fmt.Sprintf("the commit holds blob %s, the index %s", blob, row.Blob)})
		default:
			kept++
		}
	}
	return kept, lost
}
