package image

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
)

// importBusybox stores a one-platform busybox image and returns its digest.
func importBusybox(t *testing.T) (*Store, string) {
	t.Helper()
	_, amd, _ := testIndex(t)
	s, _ := newTestStore(t, false)
	recs, err := s.Import(context.Background(), writeDockerArchive(t, amd, "example.org/busybox:1"), ImportOptions{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("import: %v %v", recs, err)
	}
	return s, recs[0].Digest
}

// shortRacyWindow makes blobs older than a few milliseconds settled, and
// waits until the imported ones are.
func shortRacyWindow(t *testing.T) {
	old := racyWindow
	racyWindow = 20 * time.Millisecond
	t.Cleanup(func() { racyWindow = old })
	time.Sleep(60 * time.Millisecond)
}

func TestVerifyCachedRefusesTamperedBlob(t *testing.T) {
	ctx := context.Background()
	s, d := importBusybox(t)
	shortRacyWindow(t)
	if err := s.VerifyCached(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	layer := largestBlob(t, s)
	if _, ok := s.readVerifyCache()[layer]; !ok {
		t.Fatalf("no fingerprint for %s after a verification: %v", layer, s.readVerifyCache())
	}
	// A second run uses the cache and still passes.
	if err := s.VerifyCached(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	// Writing a byte changes the blob's ctime: the next run re-hashes it.
	flipByte(t, s.blobPath(layer))
	err := s.VerifyCached(ctx, d, nil)
	var mm *core.DigestMismatchError
	if !errors.As(err, &mm) || mm.Want != layer || !errors.Is(err, core.ErrCorrupt) {
		t.Fatalf("cached verify of a tampered blob: %v, want a digest mismatch of %s", err, layer)
	}
	if _, ok := s.readVerifyCache()[layer]; ok {
		t.Errorf("the tampered blob kept its fingerprint")
	}
	if err := s.VerifyCached(ctx, d, nil); !errors.As(err, &mm) {
		t.Errorf("second cached verify of a tampered blob: %v", err)
	}
}

// TestVerifyIgnoresCache: a change the cache cannot see (simulated by
// writing the tampered blob's fingerprint into the cache, as bit rot would
// leave it) passes a run's verification but never `image verify`.
func TestVerifyIgnoresCache(t *testing.T) {
	ctx := context.Background()
	s, d := importBusybox(t)
	shortRacyWindow(t)
	if err := s.VerifyCached(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	layer := largestBlob(t, s)
	flipByte(t, s.blobPath(layer))
	m := s.readVerifyCache()
	fp, ok := statFingerprint(s.blobPath(layer))
	if !ok {
		t.Fatal("no fingerprint")
	}
	m[layer] = fp
	data, _ := json.Marshal(verifyCache{Version: 1, Blobs: m})
	if err := os.WriteFile(s.verifyCacheFile(), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyCached(ctx, d, nil); err != nil {
		t.Fatalf("cached verify with a forged fingerprint re-hashed the blob: %v (the test forges the cache to show it is used)", err)
	}
	var mm *core.DigestMismatchError
	if err := s.Verify(ctx, d, nil); !errors.As(err, &mm) || mm.Want != layer {
		t.Fatalf("verify: %v, want a digest mismatch of %s whatever the cache says", err, layer)
	}
	if _, ok := s.readVerifyCache()[layer]; ok {
		t.Errorf("verify left the forged fingerprint in the cache")
	}
}

// TestVerifyCachedRacy: a blob that changed within racyWindow of its hash
// gets no fingerprint (a later write could keep its ctime).
func TestVerifyCachedRacy(t *testing.T) {
	s, d := importBusybox(t)
	old := racyWindow
	racyWindow = time.Hour
	t.Cleanup(func() { racyWindow = old })
	if err := s.VerifyCached(context.Background(), d, nil); err != nil {
		t.Fatal(err)
	}
	if m := s.readVerifyCache(); len(m) != 0 {
		t.Errorf("fingerprints of blobs that just changed: %v", m)
	}
}
