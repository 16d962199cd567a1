package inventory

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/runprov/runprov/core"
)

// Probe looks up, inside the root filesystem at dir, which of dirs (absolute
// paths) are directories, following symlinks only inside the root, and
// which model hub caches (.cache/huggingface, or a directory HF_HOME names
// in caches) the image ships.
func Probe(ctx context.Context, dir string, dirs, caches []string) (*core.RootfsFacts, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open rootfs: %w", err)
	}
	defer root.Close()
	fsys := root.FS()
	facts := &core.RootfsFacts{Dirs: map[string]bool{}, Caches: []string{}}
	isDir := func(p string) bool {
		fi, err := fs.Stat(fsys, strings.TrimPrefix(path.Clean("/"+p), "/"))
		return err == nil && fi.IsDir()
	}
	for _, d := range dirs {
		facts.Dirs[d] = isDir(d)
	}
	seen := map[string]bool{}
	for _, c := range caches {
		if c != "" && isDir(c) && !seen[path.Clean(c)] {
			seen[path.Clean(c)] = true
			facts.Caches = append(facts.Caches, path.Clean(c))
		}
	}
	err = fs.WalkDir(fsys, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.IsDir() {
			return nil
		}
		if p != "." && path.Dir(p) == "." && skipTop[e.Name()] {
			return fs.SkipDir
		}
		if e.Name() == "huggingface" && path.Base(path.Dir(p)) == ".cache" {
			if !seen[abs(p)] {
				facts.Caches = append(facts.Caches, abs(p))
			}
			return fs.SkipDir
		}
		return ctx.Err()
	})
	return facts, err
}
