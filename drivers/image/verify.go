package image

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/runprov/runprov/core"
)

// blobRef is a blob of an image, as its referrer describes it.
type blobRef struct {
	desc v1.Descriptor
	what string
}

// imageBlobs lists the blobs of stored image d, the index and manifests
// first. Manifests and indexes are read (and so verified) on the way.
func (s *Store) imageBlobs(ctx context.Context, rec *core.ImageRecord) ([]blobRef, error) {
	d := rec.Digest
	manifests := []string{d}
	var out []blobRef
	if rec.IsIndex() {
		data, err := s.readBlob(d, "index", maxManifestSize)
		if err != nil {
			return nil, err
		}
		idx, err := parseIndex(data, d)
		if err != nil {
			return nil, err
		}
		out = append(out, blobRef{v1.Descriptor{Digest: mustHash(d), Size: int64(len(data))}, "index " + d})
		manifests = manifests[:0]
		for _, m := range idx.Manifests {
			if _, err := s.rec.ImageRecord(ctx, m.Digest.String()); err == nil {
				manifests = append(manifests, m.Digest.String())
			}
		}
	}
	for _, md := range manifests {
		data, err := s.readBlob(md, "manifest", maxManifestSize)
		if err != nil {
			return nil, err
		}
		m, err := parseManifest(data, md)
		if err != nil {
			return nil, err
		}
		out = append(out, blobRef{v1.Descriptor{Digest: mustHash(md), Size: int64(len(data))}, "manifest " + md})
		out = append(out, blobRef{m.Config, "config of manifest " + md})
		for i, l := range m.Layers {
			out = append(out, blobRef{l, fmt.Sprintf("layer %d of manifest %s", i+1, md)})
		}
	}
	return out, nil
}

// Verify re-hashes every blob of the image (index, manifests, config and
// layers; a mismatch is a *core.DigestMismatchError naming the blob),
// whatever the verification cache says (runprov image verify), and
// refreshes the cache.
func (s *Store) Verify(ctx context.Context, digest string, p core.Progress) error {
	return s.verify(ctx, digest, p, false)
}

// VerifyCached is Verify for runs: it re-hashes only the blobs whose stat
// fingerprint differs from the one recorded after their last full re-hash
// that matched (the verification cache, like git's index).
//
// The trade-off: a blob changed through the file system gets a new change
// time (ctime), which no user can set back, so writing, truncating,
// replacing (a new inode), chmod or chown of a blob all make the next run
// re-hash it and refuse it if its digest no longer matches. What the cache
// cannot see is a change that bypasses the file system: bit rot, or
// writing to the raw disk. runprov image verify (Verify) always re-hashes
// everything, and so do runs of an image whose blobs have no fingerprint.
// A fingerprint is only recorded when the blob's ctime is older than
// racyWindow at the time of the hash: within one timestamp granule of the
// file system a later write could keep the same ctime (git's "racy" case).
func (s *Store) VerifyCached(ctx context.Context, digest string, p core.Progress) error {
	return s.verify(ctx, digest, p, true)
}

func (s *Store) verify(ctx context.Context, digest string, p core.Progress, useCache bool) error {
	d, err := s.Lookup(ctx, digest)
	if err != nil {
		return err
	}
	rec, err := s.rec.ImageRecord(ctx, d)
	if err != nil {
		return err
	}
	unlock, err := s.lock(ctx, false)
	if err != nil {
		return err
	}
	defer unlock()
	blobs, err := s.imageBlobs(ctx, rec)
	if err != nil {
		return err
	}
	p = core.OrNoProgress(p)
	var total int64
	for _, b := range blobs {
		total += b.desc.Size
	}
	p.Start("verify "+shortDigest(d), total)
	defer p.Done()
	v := &blobVerifier{ctx: ctx, cache: s.readVerifyCache(), p: p}
	var errs []error
	seen := map[string]bool{}
	for _, b := range blobs {
		bd := b.desc.Digest.String()
		if seen[bd] {
			continue
		}
		seen[bd] = true
		path := s.blobPath(bd)
		if useCache {
			if fp, ok := statFingerprint(path); ok && fp == v.cache[bd] && fp.Size == b.desc.Size {
				p.Add(b.desc.Size)
				continue
			}
		}
		problem, err := v.check(b, path)
		if err != nil {
			return err
		}
		if problem != nil {
			errs = append(errs, problem)
		}
	}
	if v.changed {
		s.writeVerifyCache(v.cache)
	}
	return errors.Join(errs...)
}

// blobVerifier re-hashes blobs, keeping in cache the fingerprint of each
// that hashed right and did not change while it was read.
type blobVerifier struct {
	ctx     context.Context
	cache   map[string]fingerprint
	changed bool // cache differs from the file's
	buf     []byte
	p       core.Progress
}

// check re-hashes the blob b at path. problem is what is wrong with it (nil
// when it is whole); err is a failure that stops the verification.
func (v *blobVerifier) check(b blobRef, path string) (problem, err error) {
	bd := b.desc.Digest.String()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		v.forget(bd)
		return fmt.Errorf("%s: blob %s: %w: missing from the store", b.what, bd, core.ErrCorrupt), nil
	}
	if err != nil {
		return nil, err
	}
	start := time.Now()
	before, okBefore := fileFingerprint(f)
	if v.buf == nil {
		v.buf = make([]byte, 1<<20)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(progressWriter{h, v.p}, ctxReader{v.ctx, f}, v.buf)
	after, okAfter := fileFingerprint(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", b.what, err)
	}
	switch got := hexDigest(h); {
	case got != bd:
		v.forget(bd)
		return &core.DigestMismatchError{What: b.what, Want: bd, Got: got}, nil
	case n != b.desc.Size:
		v.forget(bd)
		return fmt.Errorf("%s: blob %s: %w: %d bytes, the manifest says %d", b.what, bd, core.ErrCorrupt, n, b.desc.Size), nil
	case okBefore && okAfter && before == after && before.Size == n && before.settled(start):
		if v.cache[bd] != before {
			v.cache[bd] = before
			v.changed = true
		}
	default:
		v.forget(bd)
	}
	return nil, nil
}

func (v *blobVerifier) forget(digest string) {
	v.changed = deleteKey(v.cache, digest) || v.changed
}

func deleteKey(m map[string]fingerprint, k string) bool {
	_, ok := m[k]
	delete(m, k)
	return ok
}

// racyWindow: a blob whose ctime is less than this before its hash began
// gets no fingerprint. It covers the timestamp granularity of the file
// systems a store may live on (a jiffy on ext4, xfs, btrfs and tmpfs; up
// to two seconds on FAT).
var racyWindow = 2 * time.Second // a variable for the tests

// fingerprint is what the verification cache keeps of a blob that hashed
// to its digest: a regular file's device, inode, size, and modification
// and change times in nanoseconds.
type fingerprint struct {
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime_ns"`
	Ctime int64  `json:"ctime_ns"`
}

func fingerprintOf(st *unix.Stat_t) (fingerprint, bool) {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fingerprint{}, false
	}
	return fingerprint{Dev: uint64(st.Dev), Ino: st.Ino, Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}, true
}

// statFingerprint fingerprints the blob at path without following links.
func statFingerprint(path string) (fingerprint, bool) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fingerprint{}, false
	}
	return fingerprintOf(&st)
}

func fileFingerprint(f *os.File) (fingerprint, bool) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fingerprint{}, false
	}
	return fingerprintOf(&st)
}

// settled says whether the blob last changed well before start.
func (fp fingerprint) settled(start time.Time) bool {
	return fp.Ctime < start.Add(-racyWindow).UnixNano() && fp.Mtime < start.Add(-racyWindow).UnixNano()
}

// verifyCacheFile is the verification cache, beside the image lock.
func (s *Store) verifyCacheFile() string {
	return filepath.Join(s.layout.Images(), ".runprov-verified")
}

type verifyCache struct {
	Version int                    `json:"version"`
	Blobs   map[string]fingerprint `json:"blobs"`
}

// readVerifyCache returns the cache's fingerprints by blob digest; an
// unreadable or foreign cache is empty (everything is re-hashed).
func (s *Store) readVerifyCache() map[string]fingerprint {
	var c verifyCache
	data, err := os.ReadFile(s.verifyCacheFile())
	if err != nil || json.Unmarshal(data, &c) != nil || c.Version != 1 || c.Blobs == nil {
		return map[string]fingerprint{}
	}
	return c.Blobs
}

// writeVerifyCache replaces the cache, without the blobs no longer stored.
// Runs of other processes may replace it meanwhile: a lost fingerprint
// only costs a re-hash. A failure to write is not an error for the same
// reason.
func (s *Store) writeVerifyCache(m map[string]fingerprint) {
	for d := range m {
		if checkDigest(d) != nil {
			delete(m, d)
		} else if _, ok := statFingerprint(s.blobPath(d)); !ok {
			delete(m, d)
		}
	}
	data, err := json.Marshal(verifyCache{Version: 1, Blobs: m})
	if err != nil {
		return
	}
	if err := writeFileAtomic(s.verifyCacheFile(), append(data, '\n')); err != nil {
		s.log.Warn("write the image verification cache", "err", err)
	}
}
