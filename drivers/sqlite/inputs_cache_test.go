package sqlite

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
)

// TestInputFingerprints: entries are read and replaced by root, a root
// being the path itself and everything below it, never a sibling that
// shares its prefix; Put drops the entries under a root it is not given.
func TestInputFingerprints(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	fp := func(ino uint64) core.InputFingerprint {
		return core.InputFingerprint{Dev: 1<<63 + 5, Ino: ino, Size: 10, MtimeNS: 1, CtimeNS: 2, SHA256: "ab", HashedAt: at}
	}
	all := map[string]core.InputFingerprint{"/d/a": fp(1), "/d/sub/b": fp(2), "/d0": fp(3), "/d-x/c": fp(4), "/e": fp(5)}
	if err := s.PutInputFingerprints(ctx, []string{"/d", "/d0", "/d-x", "/e"}, all); err != nil {
		t.Fatal(err)
	}
	keys := func(roots ...string) []string {
		t.Helper()
		m, err := s.InputFingerprints(ctx, roots)
		if err != nil {
			t.Fatal(err)
		}
		for p, got := range m {
			if got != all[p] {
				t.Errorf("%s reads back as %+v, want %+v", p, got, all[p])
			}
		}
		return slices.Sorted(maps.Keys(m))
	}
	if got := keys("/d"); !slices.Equal(got, []string{"/d/a", "/d/sub/b"}) {
		t.Errorf("under /d: %v", got)
	}
	if got := keys("/d/"); !slices.Equal(got, []string{"/d/a", "/d/sub/b"}) {
		t.Errorf("under /d/: %v", got)
	}
	if got := keys("/e", "/d0"); !slices.Equal(got, []string{"/d0", "/e"}) {
		t.Errorf("/e and /d0: %v", got)
	}
	// /d/sub/b is gone: Put without it drops it, and leaves /d0 alone.
	if err := s.PutInputFingerprints(ctx, []string{"/d"}, map[string]core.InputFingerprint{"/d/a": fp(1)}); err != nil {
		t.Fatal(err)
	}
	if got := keys("/d", "/d0", "/d-x"); !slices.Equal(got, []string{"/d-x/c", "/d/a", "/d0"}) {
		t.Errorf("after dropping /d/sub/b: %v", got)
	}
}
