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
	"time"

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
	recs, _, err := CachedManifest(ctx, name, root, workers, nil)
	return recs, err
}

// CachedManifest is Manifest with the input cache: a regular file whose
// fingerprint, by absolute path, is in cached and matches its lstat takes
// its sha256 from there without being read (its record's CachedAt says
// when it was read in full). It also returns the fingerprints worth
// keeping: those it used, and those of the files it hashed that did not
// change while hashed and had last changed RacyWindow before.
func CachedManifest(ctx context.Context, name, root string, workers int, cached map[string]core.InputFingerprint) ([]core.FileRecord, map[string]core.InputFingerprint, error) {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	fi, err := os.Lstat(root)
	if err != nil {
		return nil, nil, fmt.Errorf("manifest of %s: %w", name, err)
	}
	m := manifest{name: name, cached: cached, keep: map[string]core.InputFingerprint{}}
	if !fi.IsDir() {
		if err := m.add(root, filepath.Base(root), fi); err != nil {
			return nil, nil, err
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
			return m.add(p, filepath.ToSlash(rel), info)
		})
		if err != nil {
			return nil, nil, fmt.Errorf("manifest of %s: %w", name, err)
		}
	}
	if err := m.hash(ctx, workers); err != nil {
		return nil, nil, err
	}
	sort.Slice(m.recs, func(i, j int) bool { return m.recs[i].Path < m.recs[j].Path })
	return m.recs, m.keep, nil
}

// manifest is the state of one CachedManifest.
type manifest struct {
	name   string
	cached map[string]core.InputFingerprint
	recs   []core.FileRecord
	jobs   []hashJob
	mu     sync.Mutex // guards keep while hashing
	keep   map[string]core.InputFingerprint
}

type hashJob struct {
	idx  int
	path string
}

// add lists the file abs (lstat d) as rel, from the cache when it can.
func (m *manifest) add(abs, rel string, d fs.FileInfo) error {
	switch {
	case d.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(abs)
		if err != nil {
			return err
		}
		m.recs = append(m.recs, core.FileRecord{Name: m.name, Path: rel, Link: target})
	case d.Mode().IsRegular():
		rec := core.FileRecord{Name: m.name, Path: rel, Size: d.Size()}
		if fp, ok := m.cached[abs]; ok && fp.SHA256 != "" {
			if now, ok := fingerprintOf(d.Sys()); ok && now.SameFile(fp) {
				rec.SHA256, rec.CachedAt = fp.SHA256, fp.HashedAt
				m.recs = append(m.recs, rec)
				m.keep[abs] = fp
				return nil
			}
		}
		m.recs = append(m.recs, rec)
		m.jobs = append(m.jobs, hashJob{len(m.recs) - 1, abs})
	}
	return nil
}

// hash hashes the files of m.jobs with workers goroutines.
func (m *manifest) hash(ctx context.Context, workers int) error {
	// Biggest files first, so one large file does not start last.
	sort.Slice(m.jobs, func(i, j int) bool { return m.recs[m.jobs[i].idx].Size > m.recs[m.jobs[j].idx].Size })
	ch := make(chan hashJob)
	var wg sync.WaitGroup
	var errs []error
	for range min(workers, max(1, len(m.jobs))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, hashBufSize)
			for j := range ch {
				h, err := hashFile(ctx, j.path, buf)
				m.mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if h.settled {
					m.keep[j.path] = h.fp
				}
				m.mu.Unlock()
				if err == nil {
					m.recs[j.idx].SHA256, m.recs[j.idx].Size = h.fp.SHA256, h.fp.Size
				}
			}
		}()
	}
	for _, j := range m.jobs {
		if ctx.Err() != nil {
			break
		}
		ch <- j
	}
	close(ch)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("manifest of %s: %w", m.name, errors.Join(errs...))
	}
	return nil
}

// RacyWindow: a file whose ctime or mtime is less than this before its
// hash began gets no fingerprint, since within one timestamp granule of
// its file system a later write could leave both times as they were (git's
// "racy" case). Two seconds covers the coarsest (FAT); a jiffy is enough
// on ext4, xfs, btrfs and tmpfs.
const RacyWindow = 2 * time.Second

// fingerprintOf fingerprints a regular file from its stat; false for
// anything else.
func fingerprintOf(sys any) (core.InputFingerprint, bool) {
	st, ok := sys.(*syscall.Stat_t)
	if !ok || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return core.InputFingerprint{}, false
	}
	return core.InputFingerprint{Dev: st.Dev, Ino: st.Ino, Size: st.Size,
		MtimeNS: st.Mtim.Nano(), CtimeNS: st.Ctim.Nano()}, true
}

func fstatFingerprint(f *os.File) (core.InputFingerprint, bool) {
	fi, err := f.Stat()
	if err != nil {
		return core.InputFingerprint{}, false
	}
	return fingerprintOf(fi.Sys())
}

// hashed is what hashFile found: fp carries the sha256, the size read and
// the time the hash began; settled says fp may be kept.
type hashed struct {
	fp      core.InputFingerprint
	settled bool
}

// hashFile hashes the regular file at p, opened without following a
// symlink put in its place.
func hashFile(ctx context.Context, p string, buf []byte) (hashed, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return hashed{}, err
	}
	defer f.Close()
	start := time.Now()
	before, okBefore := fstatFingerprint(f)
	h := sha256.New()
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return hashed{}, err
		}
		k, err := f.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return hashed{}, fmt.Errorf("hash %s: %w", p, err)
		}
	}
	after, okAfter := fstatFingerprint(f)
	old := start.Add(-RacyWindow).UnixNano()
	out := hashed{fp: before, settled: okBefore && okAfter && before == after && before.Size == n &&
		before.CtimeNS < old && before.MtimeNS < old}
	out.fp.SHA256, out.fp.Size, out.fp.HashedAt = hex.EncodeToString(h.Sum(nil)), n, start.UTC()
	return out, nil
}
