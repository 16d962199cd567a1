package image

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

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

// Verify implements core.Images.
func (s *Store) Verify(ctx context.Context, digest string, p core.Progress) error {
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
	var errs []error
	seen := map[string]bool{}
	buf := make([]byte, 1<<20)
	for _, b := range blobs {
		bd := b.desc.Digest.String()
		if seen[bd] {
			continue
		}
		seen[bd] = true
		f, err := os.Open(s.blobPath(bd))
		if errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("%s: blob %s: %w: missing from the store", b.what, bd, core.ErrCorrupt))
			continue
		}
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.CopyBuffer(progressWriter{h, p}, ctxReader{ctx, f}, buf)
		f.Close()
		if err != nil {
			return fmt.Errorf("verify %s: %w", b.what, err)
		}
		if got := hexDigest(h); got != bd {
			errs = append(errs, &core.DigestMismatchError{What: b.what, Want: bd, Got: got})
		} else if n != b.desc.Size {
			errs = append(errs, fmt.Errorf("%s: blob %s: %w: %d bytes, the manifest says %d", b.what, bd, core.ErrCorrupt, n, b.desc.Size))
		}
	}
	return errors.Join(errs...)
}
