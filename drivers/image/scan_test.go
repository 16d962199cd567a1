package image

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/runprov/runprov/core"
)

// TestScanLayers: setuid files and world-writable directories as the
// layers leave them, whiteouts and opaque directories applied; a changed
// layer blob is refused.
func TestScanLayers(t *testing.T) {
	s, _ := newTestStore(t, false)
	l1 := layerTar(t,
		tDir("usr/", 0o755), tDir("usr/bin/", 0o755),
		tFile("usr/bin/su", "su", 0o4755), tFile("usr/bin/wall", "wall", 0o2755), tFile("usr/bin/mount", "mount", 0o4755),
		tDir("opt/", 0o755), tDir("opt/shared/", 0o777), tFile("opt/shared/x", "12345", 0o644),
		tDir("tmp/", 0o1777), tDir("data/", 0o777), tFile("data/big", "0123456789", 0o644),
	)
	l2 := layerTar(t,
		tFile("usr/bin/.wh.mount", "", 0o644),  // deleted
		tFile("usr/bin/wall", "wall2", 0o755),  // replaced without the bit
		tFile("data/.a-early", "kept", 0o4755), // same layer, before the marker
		tFile("data/.wh..wh..opq", "", 0o644),  // emptied
		tFile("usr/bin/newgrp", "ng", 0o4711),  // added
	)
	d := importImage(t, s, testImage(t, "amd64", rawLayer(l1), rawLayer(l2)))
	got, err := s.ScanLayers(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/data/.a-early", "/usr/bin/newgrp", "/usr/bin/su"}; !slices.Equal(got.Setuid, want) {
		t.Errorf("setuid %v, want %v", got.Setuid, want)
	}
	if want := []string{"/data", "/opt/shared", "/tmp"}; !slices.Equal(got.WorldWritable, want) {
		t.Errorf("world-writable %v, want %v", got.WorldWritable, want)
	}
	if want := int64(len("su") + len("wall2") + len("12345") + len("kept") + len("ng")); got.Size != want {
		t.Errorf("size %d, want %d", got.Size, want)
	}
}

func TestScanLayersRefusesChangedBlob(t *testing.T) {
	s, _ := newTestStore(t, false)
	l := layerTar(t, tFile("a", "0123456789abcdef", 0o644))
	d := importImage(t, s, testImage(t, "amd64", rawLayer(l)))
	flipByte(t, s.blobPath(digestOf(t, rawLayer(l))))
	var mm *core.DigestMismatchError
	if _, err := s.ScanLayers(context.Background(), d); !errors.As(err, &mm) {
		t.Errorf("scan of a changed layer: %v, want a digest mismatch", err)
	}
}
