package producer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
)

// TestCachedManifestRacy: a file that changed within RacyWindow of its
// hash gets no fingerprint to keep, since a later write in the same
// timestamp granule could leave its fingerprint as it is; a cached entry
// whose fingerprint matches is used without reading the file, one that
// differs in any field is not; links are never cached.
func TestCachedManifestRacy(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	recs, keep, err := CachedManifest(ctx, "data", dir, 1, nil)
	if err != nil || len(recs) != 2 {
		t.Fatalf("manifest: %v %+v", err, recs)
	}
	if len(keep) != 0 {
		t.Errorf("a file written just now has a fingerprint to keep: %+v", keep)
	}
	fi, err := os.Lstat(f)
	if err != nil {
		t.Fatal(err)
	}
	now, _ := fingerprintOf(fi.Sys())
	forged := strings.Repeat("f", 64)
	for _, c := range []struct {
		name   string
		edit   func(*core.InputFingerprint)
		cached bool
	}{
		{"same", func(*core.InputFingerprint) {}, true},
		{"dev", func(fp *core.InputFingerprint) { fp.Dev++ }, false},
		{"ino", func(fp *core.InputFingerprint) { fp.Ino++ }, false},
		{"size", func(fp *core.InputFingerprint) { fp.Size++ }, false},
		{"mtime", func(fp *core.InputFingerprint) { fp.MtimeNS-- }, false},
		{"ctime", func(fp *core.InputFingerprint) { fp.CtimeNS-- }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			fp := now
			fp.SHA256, fp.HashedAt = forged, fi.ModTime()
			c.edit(&fp)
			cache := map[string]core.InputFingerprint{f: fp, filepath.Join(dir, "l"): fp}
			recs, keep, err := CachedManifest(ctx, "data", dir, 1, cache)
			if err != nil {
				t.Fatal(err)
			}
			got := recs[0] // f sorts before l
			if used := got.SHA256 == forged; used != c.cached || used == got.CachedAt.IsZero() {
				t.Errorf("cache used: %v (cached at %s), want %v", used, got.CachedAt, c.cached)
			}
			if _, kept := keep[f]; kept != c.cached {
				t.Errorf("fingerprint kept: %v, want %v", kept, c.cached)
			}
			if l := recs[1]; l.Link != "f" || l.SHA256 != "" || !l.CachedAt.IsZero() {
				t.Errorf("link: %+v", l)
			}
		})
	}
}
