package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/runprov/runprov/core"
)

// Check implements core.Checker for runprov fsck: every stored image's
// blobs are in the layout with the sizes their manifests give, and its
// manifests and configs hash to their digests. Layers are not re-hashed
// (runprov image verify does that).
func (s *Store) Check(ctx context.Context, report func(core.Problem)) error {
	recs, err := s.rec.ImageRecords(ctx)
	if err != nil {
		return err
	}
	unlock, err := s.lock(ctx, false)
	if err != nil {
		return err
	}
	defer unlock()
	for i := range recs {
		r := &recs[i]
		where := "image " + r.Digest
		if err := checkDigest(r.Digest); err != nil {
			report(core.Problem{Where: where, What: err.Error()})
			continue
		}
		if r.IsIndex() { // its manifests are rows of their own, checked on their own
			children, err := s.indexChildren(r.Digest)
			if err != nil {
				report(core.Problem{Where: where, What: err.Error()})
				continue
			}
			stored := 0
			for _, c := range children {
				if _, err := s.rec.ImageRecord(ctx, c); err == nil {
					stored++
				}
			}
			if stored == 0 {
				report(core.Problem{Where: where, What: "none of the index's manifests is in the store"})
			}
			continue
		}
		blobs, err := s.imageBlobs(ctx, r)
		if err != nil {
			report(core.Problem{Where: where, What: err.Error()})
			continue
		}
		for _, b := range blobs {
			// Configs are small: check they hash to their digest (a missing one is reported below).
			if _, err := os.Stat(s.blobPath(b.desc.Digest.String())); err == nil && strings.HasPrefix(b.what, "config") {
				if _, err := s.readBlob(b.desc.Digest.String(), "config", maxConfigSize); err != nil {
					report(core.Problem{Where: where, What: err.Error()})
				}
			}
		}
		for _, b := range blobs {
			fi, err := os.Stat(s.blobPath(b.desc.Digest.String()))
			switch {
			case errors.Is(err, os.ErrNotExist):
				report(core.Problem{Where: where, What: fmt.Sprintf("%s: blob %s is missing", b.what, b.desc.Digest)})
			case err != nil:
				report(core.Problem{Where: where, What: err.Error()})
			case fi.Size() != b.desc.Size:
				report(core.Problem{Where: where, What: fmt.Sprintf("%s: blob %s has %d bytes, the manifest says %d", b.what, b.desc.Digest, fi.Size(), b.desc.Size)})
			}
		}
	}
	return nil
}
