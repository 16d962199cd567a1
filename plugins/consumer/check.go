package consumer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/runfile"
)

// Check implements core.Checker: for every repository it recomputes the
// tarball's sha256 and size, opens the repository from the tarball, checks
// the head, and checks every commit row against git (the commit exists and
// is on the branch, the Runfile's blob, author, time and message match, and
// the Runfile still parses to the recorded image digest).
func (c *Consumer) Check(ctx context.Context, report func(core.Problem)) error {
	repos, err := c.Store.Repos(ctx)
	if err != nil {
		return err
	}
	for _, info := range repos {
		if err := c.checkRepo(ctx, info.Name, report); err != nil {
			return err
		}
	}
	return nil
}

func (c *Consumer) checkRepo(ctx context.Context, name string, report func(core.Problem)) error {
	where := fmt.Sprintf("repo %q", name)
	bad := func(format string, args ...any) {
		report(core.Problem{Where: where, What: fmt.Sprintf(format, args...)})
	}
	art, err := c.Store.Repo(ctx, name)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(art.Tarball)
	if got := hex.EncodeToString(sum[:]); got != art.SHA256 {
		bad("container_run_commands sha256 is %s, recorded %s", got, art.SHA256)
	}
	if int64(len(art.Tarball)) != art.Size {
		bad("container_run_commands is %d bytes, recorded %d", len(art.Tarball), art.Size)
	}
	if c.Salvager != nil {
		scan, err := c.Salvager.ScanObjects(ctx, c.TmpDir, art.Tarball)
		if err == nil && scan.Damaged() {
			bad("object store damaged: %s (runprov fsck --repair rebuilds it from what can still be read)", damage(scan))
		}
	}
	repo, err := c.Git.OpenRepo(ctx, c.TmpDir, art.Tarball)
	if err != nil {
		bad("cannot open the repository from its tarball: %v", err)
		return nil
	}
	defer repo.Close()
	head, err := repo.Head(ctx)
	if err != nil {
		bad("cannot read the branch head: %v", err)
		return nil
	}
	if head != art.Head {
		bad("git head is %q, recorded %q", head, art.Head)
	}
	rows, err := c.Store.Commits(ctx, core.CommitFilter{Repo: name})
	if err != nil {
		return err
	}
	for _, row := range rows {
		where = fmt.Sprintf("repo %q commit %s %s", name, short(row.Hash), row.Path)
		info, err := repo.Commit(ctx, row.Hash)
		if err != nil {
			bad("indexed but not in git: %v", err)
			continue
		}
		if ok, err := repo.IsAncestor(ctx, row.Hash, head); err != nil || !ok {
			bad("not on branch %s (head %s)", core.DefaultBranch, short(head))
		}
		if info.AuthorString() != row.Author || !info.Author.When.Equal(row.Time) || info.Message != row.Message {
			bad("author, time or message differ between git and the index")
		}
		data, blob, err := repo.ReadFile(ctx, row.Hash, row.Path)
		if err != nil {
			bad("Runfile missing from the commit: %v", err)
			continue
		}
		if blob != row.Blob {
			bad("Runfile blob is %s in git, %s in the index", blob, row.Blob)
		}
		rf, err := runfile.Parse(row.Path, data)
		if err != nil {
			bad("Runfile no longer parses: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
			continue
		}
		if rf.From.Digest != row.ImageDigest || rf.From.Ref != row.ImageRef {
			bad("Runfile pins %s, the index says %s", rf.From.Ref, row.ImageRef)
		}
	}
	return nil
}

// damage words what a scan found wrong.
func damage(s core.ObjectScan) string {
	var parts []string
	if s.Unindexed > 0 {
		parts = append(parts, fmt.Sprintf("%d object(s) in packs their index does not list", s.Unindexed))
	}
	parts = append(parts, s.Problems...)
	return strings.Join(parts, "; ")
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
