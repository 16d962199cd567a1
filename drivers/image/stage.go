package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/runprov/runprov/core"
)

// stage collects the blobs of an import or pull in a private directory under
// STORE/tmp, each verified against its digest as it is written. Only when
// every blob is there does commit move them into the layout and store the
// rows; close removes whatever is left, so a failure keeps nothing.
type stage struct {
	s      *Store
	dir    string
	staged map[string]int64 // digest → size, blobs written to dir
	p      core.Progress
}

func (s *Store) newStage(what string, p core.Progress) (*stage, error) {
	dir, err := core.MkdirTemp(s.layout.Tmp(), what)
	if err != nil {
		return nil, fmt.Errorf("create temporary directory: %w", err)
	}
	return &stage{s: s, dir: dir, staged: map[string]int64{}, p: core.OrNoProgress(p)}, nil
}

func (st *stage) close() { os.RemoveAll(st.dir) }

func (st *stage) path(d string) string { return filepath.Join(st.dir, digestHex(d)) }

// has reports whether blob d is staged or already in the store.
func (st *stage) has(d string) bool {
	if _, ok := st.staged[d]; ok {
		return true
	}
	_, err := os.Stat(st.s.blobPath(d))
	return err == nil
}

// put copies r into the stage as blob want of size bytes (size < 0:
// unknown). The bytes are hashed while they are written; a blob whose digest
// or size differs is a *core.DigestMismatchError and is not kept. Progress
// counts the bytes when counted is set.
func (st *stage) put(ctx context.Context, what, want string, size int64, r io.Reader, counted bool) error {
	if err := checkDigest(want); err != nil {
		return err
	}
	if _, ok := st.staged[want]; ok {
		return nil
	}
	f, err := os.OpenFile(st.path(want), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("stage %s: %w", what, err)
	}
	h := sha256.New()
	w := io.Writer(f)
	if counted {
		w = progressWriter{f, st.p}
	}
	src := r
	if size >= 0 {
		src = io.LimitReader(r, size+1) // one byte more tells a blob that is too long
	}
	n, err := io.CopyBuffer(io.MultiWriter(w, h), ctxReader{ctx, src}, make([]byte, 1<<20))
	if err == nil {
		err = f.Sync() // the row that names this blob is committed after it
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(st.path(want))
		return fmt.Errorf("copy %s: %w", what, err)
	}
	if got := hexDigest(h); got != want || (size >= 0 && n != size) {
		os.Remove(st.path(want))
		if got == want { // the descriptor lied about the size, not the content
			return fmt.Errorf("%s %s: %w: %d bytes, the descriptor says %d", what, want, core.ErrInvalid, n, size)
		}
		return &core.DigestMismatchError{What: what, Want: want, Got: got}
	}
	st.staged[want] = n
	return nil
}

// read returns a small blob from the stage or the store.
func (st *stage) read(d, what string, limit int64) ([]byte, error) {
	if _, ok := st.staged[d]; !ok {
		return st.s.readBlob(d, what, limit)
	}
	data, err := os.ReadFile(st.path(d))
	if err != nil {
		return nil, err
	}
	return data, nil
}

// commit moves the staged blobs into the layout and stores recs with one
// event each, under the exclusive lock so that gc never sees blobs without
// their rows. A crash between the two leaves unreferenced blobs, which gc
// removes.
func (st *stage) commit(ctx context.Context, recs []core.ImageRecord, ev core.ImageEvent) error {
	unlock, err := st.s.lock(ctx, true)
	if err != nil {
		return err
	}
	defer unlock()
	digests := make([]string, 0, len(st.staged))
	for d := range st.staged {
		digests = append(digests, d)
	}
	sort.Strings(digests)
	for _, d := range digests {
		if err := os.Rename(st.path(d), st.s.blobPath(d)); err != nil {
			return fmt.Errorf("store blob %s: %w", d, err)
		}
	}
	if err := syncDir(st.s.blobDir()); err != nil {
		return err
	}
	if err := st.s.rec.PutImageRecords(ctx, recs, ev); err != nil {
		return err
	}
	return st.s.writeIndex(context.WithoutCancel(ctx))
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func hexDigest(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

// ctxReader ends a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// progressWriter reports bytes written to a core.Progress.
type progressWriter struct {
	w io.Writer
	p core.Progress
}

func (pw progressWriter) Write(b []byte) (int, error) {
	n, err := pw.w.Write(b)
	pw.p.Add(int64(n))
	return n, err
}

// errBlobMissing is returned by offline sources that do not hold a blob.
var errBlobMissing = errors.New("blob not in the source")

// adopt moves a file already written and verified in the stage directory
// into the stage as blob d.
func (st *stage) adopt(tmp, d string, size int64) error {
	if _, ok := st.staged[d]; ok {
		return os.Remove(tmp)
	}
	if err := os.Rename(tmp, st.path(d)); err != nil {
		return err
	}
	st.staged[d] = size
	return nil
}
