package git

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/core/coretest"
)

// TestPushPackGitAccepts pushes a history whose packs hold deltas, then one
// more commit, and has git check every object the remote received.
func TestPushPackGitAccepts(t *testing.T) {
	ctx := context.Background()
	bare := bareRepo(t)
	r := remoteRepo(t)
	body := strings.Repeat("FROM docker.io/library/busybox\nCMD [\"/bin/true\"]\n", 20)
	for i := range 40 {
		p := []string{"Runfile", "a/Runfile", "a/b/Runfile"}[i%3]
		if _, err := r.CommitFile(ctx, p, fmt.Appendf(nil, "%s# %d\n", body, i), "c\n", alice); err != nil {
			t.Fatal(err)
		}
	}
	head, _ := r.Head(ctx)
	objs, err := r.pushObjects(ctx, plumbing.NewHash(head), plumbing.ZeroHash)
	if err != nil {
		t.Fatal(err)
	}
	pack, err := r.encodePack(objs)
	if err != nil {
		t.Fatal(err)
	}
	if n := refDeltas(t, pack); n == 0 {
		t.Fatal("the pack has no delta entries: the delta path is not exercised")
	}
	if _, err := r.Push(ctx, core.Remote{URL: bare}, "main", false); err != nil {
		t.Fatal(err)
	}
	coretest.Git(t, bare, "fsck", "--strict", "--no-dangling")
	if got := coretest.Git(t, bare, "rev-list", "--count", "main"); got != "40" {
		t.Fatalf("the remote has %s commits, want 40", got)
	}
	// One more commit sends the commit, the trees on its path and its blob.
	info, err := r.CommitFile(ctx, "a/b/Runfile", []byte(body+"# last\n"), "c\n", alice)
	if err != nil {
		t.Fatal(err)
	}
	objs, err = r.pushObjects(ctx, plumbing.NewHash(info.Hash), plumbing.NewHash(head))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 5 {
		t.Fatalf("one commit on top of the remote's head sends %d objects, want 5 (commit, 3 trees, blob)", len(objs))
	}
	if old, err := r.Push(ctx, core.Remote{URL: bare}, "main", false); err != nil || old != head {
		t.Fatalf("push of one commit: %q %v", old, err)
	}
	coretest.Git(t, bare, "fsck", "--strict", "--no-dangling")
	if got := coretest.Git(t, bare, "rev-parse", "main"); got != info.Hash {
		t.Fatalf("remote at %s, want %s", got, info.Hash)
	}
}

// refDeltas counts the REF_DELTA entries of a pack, checking that it parses.
func refDeltas(t *testing.T, pack []byte) int {
	t.Helper()
	s := packfile.NewScanner(bytes.NewReader(pack))
	_, count, err := s.Header()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range count {
		h, err := s.NextObjectHeader()
		if err != nil {
			t.Fatal(err)
		}
		if h.Type == plumbing.REFDeltaObject {
			n++
		}
		if _, _, err := s.NextObject(&bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func TestEntryHeaderRoundTrip(t *testing.T) {
	for _, size := range []int64{0, 1, 15, 16, 127, 128, 2047, 2048, 1 << 20, 1<<40 + 3} {
		for _, typ := range []plumbing.ObjectType{plumbing.BlobObject, plumbing.REFDeltaObject} {
			b := appendEntryHeader(nil, typ, size)
			gotTyp, gotSize, n, ok := entryHeader(append(b, 0xff))
			if !ok || gotTyp != typ || gotSize != size || n != len(b) {
				t.Errorf("%v %d: got %v %d n=%d ok=%v", typ, size, gotTyp, gotSize, n, ok)
			}
		}
	}
	if _, _, _, ok := entryHeader([]byte{0x80 | 0x30}); ok {
		t.Error("a header cut short parses")
	}
	if _, _, ok := ofsDeltaOffset([]byte{0x80}); ok {
		t.Error("an offset cut short parses")
	}
}
