package producer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"syscall"

	"github.com/runprov/runprov/core"
)

// hashBufSize is the read size of each hashing worker: large enough that
// the syscall cost vanishes next to SHA-256, small enough to stay flat in
// memory (workers × 1 MiB).
const hashBufSize = 1 << 20

// Manifest lists the files under root (a directory, or one file) as name's
// manifest: every regular file with its size and sha256, every symlink as
// a link (never followed), sorted by path. Directories are implied by
// their files; sockets, fifos and devices are skipped. Files are hashed in
// parallel by workers goroutines (0: one per CPU).
func Manifest(ctx context.Context, name, root string, workers int) ([]core.FileRecord, error) {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	fi, err := os.Lstat(root)
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", name, err)
	}
	type job struct {
		idx  int
		path string
	}
	var recs []core.FileRecord
	var jobs []job
	add := func(abs, rel string, d fs.FileInfo) error {
		switch {
		case d.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(abs)
			if err != nil {
				return err
			}
			recs = append(recs, core.FileRecord{Name: name, Path: rel, Link: target})
		case d.Mode().IsRegular():
			recs = append(recs, core.FileRecord{Name: name, Path: rel, Size: d.Size()})
			jobs = append(jobs, job{len(recs) - 1, abs})
		}
		return nil
	}
	if !fi.IsDir() {
		if err := add(root, filepath.Base(root), fi); err != nil {
			return nil, err
		}
	} else {
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if p == root || d.IsDir() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			return add(p, filepath.ToSlash(rel), info)
		})
		if err != nil {
			return nil, fmt.Errorf("manifest of %s: %w", name, err)
		}
	}

	// Biggest files first, so one large file does not start last.
	sort.Slice(jobs, func(i, j int) bool { return recs[jobs[i].idx].Size > recs[jobs[j].idx].Size })
	ch := make(chan job)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range min(workers, max(1, len(jobs))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, hashBufSize)
			for j := range ch {
				sum, size, err := hashFile(ctx, j.path, buf)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				recs[j.idx].SHA256 = sum
				recs[j.idx].Size = size
			}
		}()
	}
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		ch <- j
	}
	close(ch)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("manifest of %s: %w", name, errors.Join(errs...))
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Path < recs[j].Path })
	return recs, nil
}

// hashFile returns the hex sha256 and size of the regular file at p,
// opened without following a symlink put in its place.
func hashFile(ctx context.Context, p string, buf []byte) (string, int64, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
		k, err := f.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", 0, fmt.Errorf("hash %s: %w", p, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
