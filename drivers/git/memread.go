package git

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/go-git/go-billy/v5/memfs"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/runprov/runprov/core"
)

// ReadRepoFile implements core.RepoOpener: it opens the repository from
// the tarball in memory, with the same checks as a restore to disk, and
// reads one file of one commit. `cat` and `run` only read, and restoring to
// disk cost them a directory and file creation per entry.
func (Opener) ReadRepoFile(ctx context.Context, tarball []byte, commit, filePath string) ([]byte, string, error) {
	fs := memfs.New()
	err := restore(tarball,
		func(name string) error { return fs.MkdirAll(name, 0o755) },
		func(name string) (io.WriteCloser, error) {
			return fs.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		})
	if err != nil {
		return nil, "", err
	}
	gitFS, err := fs.Chroot(gitDirName)
	if err != nil {
		return nil, "", err
	}
	st := filesystem.NewStorageWithOptions(gitFS, cache.NewObjectLRUDefault(), filesystem.Options{})
	repo, err := gogit.Open(st, nil)
	if err != nil {
		return nil, "", fmt.Errorf("%w: the tarball does not hold a git repository: %v", core.ErrCorrupt, err)
	}
	defer st.Close()
	return (&Repo{repo: repo, st: st}).ReadFile(ctx, commit, filePath)
}
