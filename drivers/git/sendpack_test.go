package git

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
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

// TestChangesMatchGit compares Changes with git diff-tree on changes a
// tree walk can get wrong: a file becoming a directory and back, a mode
// change, a symlink, nested directories, a deletion.
func TestChangesMatchGit(t *testing.T) {
	ctx := context.Background()
	work := t.TempDir()
	coretest.Git(t, work, "init", "-q")
	steps := []func(){
		func() { writeFile(t, work, "a", "1"); writeFile(t, work, "d/e/f", "2"); writeFile(t, work, "d/g", "3") },
		func() { os.Remove(filepath.Join(work, "a")); writeFile(t, work, "a/Runfile", "4") },
		func() { writeFile(t, work, "d/e/f", "5"); os.Chmod(filepath.Join(work, "d/g"), 0o755) },
		func() {
			os.RemoveAll(filepath.Join(work, "a"))
			writeFile(t, work, "a", "6")
			os.Symlink("a", filepath.Join(work, "l"))
		},
		func() {
			os.RemoveAll(filepath.Join(work, "d"))
			writeFile(t, work, "d", "7")
			writeFile(t, work, "x/y/z/Runfile", "8")
		},
	}
	for i, step := range steps {
		step()
		coretest.Git(t, work, "add", "-A", ".")
		coretest.Git(t, work, "commit", "-q", "-m", fmt.Sprint("step ", i))
	}
	bare := bareRepo(t)
	coretest.Git(t, work, "push", "-q", bare, "HEAD:main")
	r := remoteRepo(t)
	head, _, err := r.Fetch(ctx, core.Remote{URL: bare}, "main")
	if err != nil {
		t.Fatal(err)
	}
	commits, err := r.NewCommits(ctx, "", head)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range commits {
		got, err := r.Changes(ctx, c.Hash)
		if err != nil {
			t.Fatal(err)
		}
		var gotLines []string
		for _, ch := range got {
			gotLines = append(gotLines, ch.Path+" "+ch.Blob)
		}
		// Added or modified regular files (modes 100644 and 100755).
		var want []string
		for _, l := range strings.Split(coretest.Git(t, work, "diff-tree", "-r", "--root", "--no-commit-id", "--no-renames", c.Hash), "\n") {
			f := strings.Fields(l)
			if len(f) == 6 && f[4] != "D" && (f[1] == "100644" || f[1] == "100755") {
				want = append(want, f[5]+" "+f[3])
			}
		}
		sort.Strings(want)
		if strings.Join(gotLines, "\n") != strings.Join(want, "\n") {
			t.Errorf("changes of %s (%s):\n%s\nwant\n%s", c.Hash, strings.TrimSpace(c.Message), strings.Join(gotLines, "\n"), strings.Join(want, "\n"))
		}
	}
}

func writeFile(t *testing.T, root, name, text string) {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestIdxHas checks the binary search of pack indexes against their
// decoded lists, for every object packed and for objects not packed.
func TestIdxHas(t *testing.T) {
	ctx := context.Background()
	r := remoteRepo(t)
	for i := range 30 {
		if _, err := r.CommitFile(ctx, fmt.Sprintf("d%d/Runfile", i%4), fmt.Appendf(nil, "FROM x\n# %d\n", i), "c\n", alice); err != nil {
			t.Fatal(err)
		}
	}
	packs, err := r.st.ObjectPacks()
	if err != nil || len(packs) == 0 {
		t.Fatalf("packs: %v %v", packs, err)
	}
	for _, p := range packs {
		idx, err := os.ReadFile(r.idxPath(p))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := readIdx(r.idxPath(p))
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range objs {
			if ok, err := idxHas(idx, h); !ok || err != nil {
				t.Errorf("pack %s: %s not found (%v)", p, h, err)
			}
			miss := h
			miss[19] ^= 1
			if ok, _ := idxHas(idx, miss); ok && !slices.Contains(objs, miss) {
				t.Errorf("pack %s: %s found, but it is not in the pack", p, miss)
			}
		}
		for _, edge := range []plumbing.Hash{{}, {0xff, 0xff, 0xff}} {
			if ok, _ := idxHas(idx, edge); ok {
				t.Errorf("pack %s: %s found", p, edge)
			}
		}
	}
	if _, err := idxHas([]byte("not an index"), plumbing.ZeroHash); err == nil {
		t.Error("a file that is no pack index is searched")
	}
}

// TestCompactDropsPackedCopies reverts a Runfile: go-git writes its blob
// loose again, and compact must delete that copy rather than pack it twice.
func TestCompactDropsPackedCopies(t *testing.T) {
	ctx := context.Background()
	r := remoteRepo(t)
	for _, body := range []string{"FROM a\n", "FROM b\n", "FROM a\n"} {
		if _, err := r.CommitFile(ctx, "Runfile", []byte(body), "c\n", alice); err != nil {
			t.Fatal(err)
		}
	}
	if got := coretest.Git(t, r.Dir(), "count-objects", "-v"); !strings.Contains(got, "count: 0\n") || !strings.Contains(got, "in-pack: 7\n") {
		t.Fatalf("want no loose objects and 7 packed (3 commits; the third has the first one's tree and blob):\n%s", got)
	}
	coretest.Git(t, r.Dir(), "fsck", "--strict")
}
