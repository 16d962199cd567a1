package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/runprov/runprov/core"
)

// List returns every stored image, oldest first.
func (s *Store) List(ctx context.Context) ([]core.ImageRecord, error) {
	return s.rec.ImageRecords(ctx)
}

// Record returns the row of a stored image named by digest or prefix.
func (s *Store) Record(ctx context.Context, digest string) (*core.ImageRecord, error) {
	d, err := s.Lookup(ctx, digest)
	if err != nil {
		return nil, err
	}
	return s.rec.ImageRecord(ctx, d)
}

// Approve marks the image approved to run, with note, and records who did
// it and when. Approving an index approves every platform of it. Approving
// an approved image again records the new note.
func (s *Store) Approve(ctx context.Context, digest, note string) (*core.ImageRecord, error) {
	d, err := s.Lookup(ctx, digest)
	if err != nil {
		return nil, err
	}
	if err := s.rec.SetImageApproval(ctx, d, true, core.NewImageEvent(core.ImageEventApprove, note)); err != nil {
		return nil, err
	}
	return s.rec.ImageRecord(ctx, d)
}

// Revoke withdraws the approval of the image, with note. An image that is not
// approved is an error wrapping core.ErrInvalid (nothing is recorded).
func (s *Store) Revoke(ctx context.Context, digest, note string) (*core.ImageRecord, error) {
	d, err := s.Lookup(ctx, digest)
	if err != nil {
		return nil, err
	}
	rec, err := s.rec.ImageRecord(ctx, d)
	if err != nil {
		return nil, err
	}
	if !rec.Approved {
		return nil, fmt.Errorf("revoke %s: %w: it is not approved", d, core.ErrInvalid)
	}
	if err := s.rec.SetImageApproval(ctx, d, false, core.NewImageEvent(core.ImageEventRevoke, note)); err != nil {
		return nil, err
	}
	return s.rec.ImageRecord(ctx, d)
}

// Events returns what happened to the image named by digest (a prefix of a
// stored image, or the full digest of a removed one), or to every image when
// digest is "".
func (s *Store) Events(ctx context.Context, digest string) ([]core.ImageEvent, error) {
	if digest == "" {
		return s.rec.ImageEvents(ctx, "")
	}
	d, err := s.Lookup(ctx, digest)
	if errors.Is(err, core.ErrNotFound) && checkDigest(strings.ToLower(digest)) == nil {
		d, err = strings.ToLower(digest), nil
	}
	if err != nil {
		return nil, err
	}
	return s.rec.ImageEvents(ctx, d)
}

// RemoveOptions tune Remove.
type RemoveOptions struct {
	Force bool // remove an approved image, or one that recorded runs used, too
}

// Remove deletes a stored image: its row (an index with the rows of its
// manifests that no other stored index lists), the rootfs of each manifest
// removed, and every blob no remaining image needs. Its events are kept. It
// refuses, with core.ErrInvalid, a manifest stored as part of an index
// (remove the index), and unless opts.Force an approved image and one that
// recorded runs used (a *core.ImageUsedError). Returns the digests removed.
func (s *Store) Remove(ctx context.Context, digest string, opts RemoveOptions) ([]string, error) {
	d, err := s.Lookup(ctx, digest)
	if err != nil {
		return nil, err
	}
	unlock, err := s.lock(ctx, true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	all, err := s.rec.ImageRecords(ctx)
	if err != nil {
		return nil, err
	}
	byDigest := map[string]core.ImageRecord{}
	for _, r := range all {
		byDigest[r.Digest] = r
	}
	rec, ok := byDigest[d]
	if !ok {
		return nil, &core.ImageNotFoundError{Digest: d}
	}
	if _, held := byDigest[rec.IndexDigest]; rec.IndexDigest != "" && held {
		return nil, fmt.Errorf("rm %s: %w: it is the %s manifest of index %s; remove the index", d, core.ErrInvalid, rec.Platform, rec.IndexDigest)
	}
	remove := []string{d}
	if rec.IsIndex() {
		// Manifests this index brought, unless another stored index lists them.
		others := map[string]bool{}
		for _, r := range all {
			if r.IsIndex() && r.Digest != d {
				children, err := s.indexChildren(r.Digest)
				if err != nil {
					return nil, err
				}
				for _, c := range children {
					others[c] = true
				}
			}
		}
		for _, r := range all {
			if r.IndexDigest == d && !others[r.Digest] {
				remove = append(remove, r.Digest)
			}
		}
	}
	if !opts.Force {
		for _, r := range remove {
			if byDigest[r].Approved {
				return nil, &core.ImageApprovedError{Digest: r, Err: fmt.Errorf("rm %s: %w: %s is approved; revoke it first or use --force",
					d, core.ErrInvalid, shortDigest(r))}
			}
		}
	}
	runs, err := s.rec.RunsOfImages(ctx, remove)
	if err != nil {
		return nil, err
	}
	if len(runs) > 0 && !opts.Force {
		return nil, &core.ImageUsedError{Digest: d, Runs: runs}
	}
	if err := s.rec.RemoveImageRecords(ctx, remove, core.NewImageEvent(core.ImageEventRemove, removeNote(rec.Ref, runs))); err != nil {
		return nil, err
	}
	for _, r := range remove {
		if err := s.removeRootfs(digestHex(r)); err != nil {
			return remove, err
		}
	}
	if _, _, err := s.gcBlobs(ctx); err != nil {
		return remove, err
	}
	return remove, s.writeIndex(context.WithoutCancel(ctx))
}

// removeNote is the note of an rm event: the image's ref, and the runs that
// used it when --force removed it anyway.
func removeNote(ref string, runs []string) string {
	if len(runs) == 0 {
		return ref
	}
	const shown = 10
	ids := make([]string, 0, shown)
	for _, id := range runs[:min(len(runs), shown)] {
		ids = append(ids, core.ShortRunID(id))
	}
	note := fmt.Sprintf("forced: used by %d recorded run(s): %s", len(runs), strings.Join(ids, ", "))
	if len(runs) > shown {
		note += ", ..."
	}
	return strings.TrimPrefix(ref+"; "+note, "; ")
}

func (s *Store) indexChildren(d string) ([]string, error) {
	data, err := s.readBlob(d, "index", maxManifestSize)
	if err != nil {
		return nil, err
	}
	idx, err := parseIndex(data, d)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range idx.Manifests {
		out = append(out, m.Digest.String())
	}
	return out, nil
}

// removeRootfs removes STORE/rootfs/<hex>: renamed away first, so that it
// disappears at once, then deleted.
func (s *Store) removeRootfs(hx string) error {
	dir := s.layout.Rootfs(hx)
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	tmp, err := core.MkdirTemp(s.layout.Tmp(), "rm")
	if err != nil {
		return err
	}
	if err := os.Rename(dir, filepath.Join(tmp, "rootfs")); err != nil {
		removeAll(tmp)
		return fmt.Errorf("remove rootfs %s: %w", dir, err)
	}
	if err := removeAll(tmp); err != nil {
		return fmt.Errorf("remove rootfs %s: %w", dir, err)
	}
	return nil
}

// GCStats says what GC removed.
type GCStats struct {
	Blobs     int   `json:"blobs"`
	BlobBytes int64 `json:"blob_bytes"`
	Rootfs    int   `json:"rootfs"`
	Temp      int   `json:"temp"`
}

// GC removes what no stored image needs: blobs (left by a crash between
// copying and recording, or by an interrupted rm), rootfs directories of
// images not in the store, and temporary directories of runprov processes
// that no longer run. It never removes a stored image, so never one that
// recorded runs used: only Remove does that.
func (s *Store) GC(ctx context.Context) (GCStats, error) {
	var st GCStats
	unlock, err := s.lock(ctx, true)
	if err != nil {
		return st, err
	}
	defer unlock()
	if st.Blobs, st.BlobBytes, err = s.gcBlobs(ctx); err != nil {
		return st, err
	}
	recs, err := s.rec.ImageRecords(ctx)
	if err != nil {
		return st, err
	}
	keep := map[string]bool{}
	for _, r := range recs {
		keep[digestHex(r.Digest)] = true
	}
	entries, err := os.ReadDir(s.layout.RootfsDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return st, err
	}
	for _, e := range entries {
		if keep[e.Name()] {
			continue
		}
		if err := s.removeRootfs(e.Name()); err != nil {
			return st, err
		}
		st.Rootfs++
	}
	st.Temp = core.CleanStaleTemp(s.layout.Tmp(), removeAll) // also rootfs trees with read-only directories
	return st, s.writeIndex(context.WithoutCancel(ctx))
}

// gcBlobs deletes the blobs no stored image references. The caller holds
// the exclusive lock.
func (s *Store) gcBlobs(ctx context.Context) (int, int64, error) {
	recs, err := s.rec.ImageRecords(ctx)
	if err != nil {
		return 0, 0, err
	}
	keep := map[string]bool{}
	for i := range recs {
		keep[digestHex(recs[i].Digest)] = true
		if recs[i].IsIndex() {
			continue // its manifests are rows of their own
		}
		blobs, err := s.imageBlobs(ctx, &recs[i])
		if err != nil {
			return 0, 0, fmt.Errorf("gc: image %s: %w (nothing was removed)", shortDigest(recs[i].Digest), err)
		}
		for _, b := range blobs {
			keep[b.desc.Digest.Hex] = true
		}
	}
	entries, err := os.ReadDir(s.blobDir())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, 0, nil
		}
		return 0, 0, err
	}
	var (
		n     int
		bytes int64
	)
	for _, e := range entries {
		if keep[e.Name()] {
			continue
		}
		if fi, err := e.Info(); err == nil {
			bytes += fi.Size()
		}
		if err := os.Remove(filepath.Join(s.blobDir(), e.Name())); err != nil {
			return n, bytes, err
		}
		n++
	}
	return n, bytes, nil
}
