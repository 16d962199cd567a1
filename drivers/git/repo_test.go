package git

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/core/coretest"
)

var alice = core.Signature{Name: "Alice", Email: "alice@example.org", When: time.Unix(1700000000, 0).UTC()}

func openNew(t *testing.T) core.GitRepo {
	t.Helper()
	r, err := Opener{}.OpenRepo(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestCommitReadArchiveReopen(t *testing.T) {
	ctx := context.Background()
	r := openNew(t)
	if h, err := r.Head(ctx); err != nil || h != "" {
		t.Fatalf("new repo head %q %v", h, err)
	}
	c1, err := r.CommitFile(ctx, "Runfile", []byte("one\n"), "Add Runfile\n", alice)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := r.CommitFile(ctx, "a/b/Runfile", []byte("two\n"), "Add a/b/Runfile\n", alice)
	if err != nil {
		t.Fatal(err)
	}
	c3, err := r.CommitFile(ctx, "a/b/Runfile", []byte("three\n"), "Update\n", alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(c2.Parents) != 1 || c2.Parents[0] != c1.Hash || c3.Parents[0] != c2.Hash {
		t.Fatalf("parents: %v %v", c2.Parents, c3.Parents)
	}
	tarball, err := r.Archive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.Archive(ctx)
	if err != nil || !bytes.Equal(tarball, again) {
		t.Fatal("archiving the same .git twice gave different bytes")
	}

	r2, err := Opener{}.OpenRepo(ctx, t.TempDir(), tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if h, _ := r2.Head(ctx); h != c3.Hash {
		t.Fatalf("reopened head %s, want %s", h, c3.Hash)
	}
	for _, tc := range []struct{ commit, path, want string }{
		{c1.Hash, "Runfile", "one\n"},
		{c2.Hash, "a/b/Runfile", "two\n"},
		{c3.Hash, "a/b/Runfile", "three\n"},
		{c3.Hash, "Runfile", "one\n"},
	} {
		got, _, err := r2.ReadFile(ctx, tc.commit, tc.path)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s:%s = %q, %v; want %q", tc.commit[:7], tc.path, got, err, tc.want)
		}
	}
	if _, _, err := r2.ReadFile(ctx, c1.Hash, "a/b/Runfile"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("file absent at c1: %v", err)
	}
	if ok, err := r2.IsAncestor(ctx, c1.Hash, c3.Hash); err != nil || !ok {
		t.Errorf("c1 ancestor of c3: %v %v", ok, err)
	}
	if ok, _ := r2.IsAncestor(ctx, c3.Hash, c1.Hash); ok {
		t.Error("c3 reported as ancestor of c1")
	}
	info, err := r2.Commit(ctx, c2.Hash)
	if err != nil || info.AuthorString() != "Alice <alice@example.org>" || !info.Author.When.Equal(alice.When) {
		t.Errorf("commit info %+v %v", info, err)
	}
}

// TestArchiveOpensWithGitCLI checks the tarball is an ordinary .git: the git
// command line reads the history and file from it.
func TestArchiveOpensWithGitCLI(t *testing.T) {
	gitBin := coretest.RequireBinary(t, "git")
	ctx := context.Background()
	r := openNew(t)
	c, err := r.CommitFile(ctx, "x/Runfile", []byte("FROM data\n"), "Add x/Runfile\n", alice)
	if err != nil {
		t.Fatal(err)
	}
	tarball, err := r.Archive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := restoreDir(tarball, dir); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(gitBin, "--git-dir", filepath.Join(dir, ".git"), "log", "--format=%H %an %s").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != c.Hash+" Alice Add x/Runfile" {
		t.Fatalf("git log: %s %v", out, err)
	}
	out, err = exec.Command(gitBin, "--git-dir", filepath.Join(dir, ".git"), "show", c.Hash+":x/Runfile").CombinedOutput()
	if err != nil || string(out) != "FROM data\n" {
		t.Fatalf("git show: %q %v", out, err)
	}
	out, err = exec.Command(gitBin, "--git-dir", filepath.Join(dir, ".git"), "fsck", "--strict").CombinedOutput()
	if err != nil {
		t.Fatalf("git fsck: %s %v", out, err)
	}
}

// TestCompactionBoundsFiles commits many times and checks that the .git stays
// a handful of files, that git fsck accepts it, and that every commit reads.
func TestCompactionBoundsFiles(t *testing.T) {
	ctx := context.Background()
	r := openNew(t)
	var hashes []string
	const n = 300
	for i := 0; i < n; i++ {
		c, err := r.CommitFile(ctx, "Runfile", []byte(strings.Repeat("x", i)+"\n"), "c\n", alice)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, c.Hash)
	}
	files := 0
	filepath.WalkDir(filepath.Join(r.(*Repo).Dir(), ".git"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return nil
	})
	// No loose objects, two files per pack (O(log n) packs), HEAD, config, refs.
	if max := 2*12 + 10; files > max {
		t.Fatalf(".git holds %d files after %d commits; compaction should keep it under %d", files, n, max)
	}
	for i, h := range hashes {
		got, _, err := r.ReadFile(ctx, h, "Runfile")
		if err != nil || len(got) != i+1 {
			t.Fatalf("commit %d: %d bytes, %v", i, len(got), err)
		}
	}
	gitBin := coretest.RequireBinary(t, "git")
	out, err := exec.Command(gitBin, "--git-dir", filepath.Join(r.(*Repo).Dir(), ".git"), "fsck", "--strict").CombinedOutput()
	if err != nil {
		t.Fatalf("git fsck after compaction: %s %v", out, err)
	}
}

func TestRefuseBadPaths(t *testing.T) {
	r := openNew(t)
	for _, p := range []string{"", "/abs", "../x", "a/../../x", ".git/config", "a//b", "./x", "."} {
		if _, err := r.CommitFile(context.Background(), p, []byte("x"), "m\n", alice); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("path %q: got %v, want ErrInvalid", p, err)
		}
	}
}

func tarOf(t *testing.T, entries ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h := h
		body := []byte("x")
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(body)
		}
	}
	tw.Close()
	return buf.Bytes()
}

// TestRestoreRefusesHostileTarballs: a container_run_commands value is data
// from a database file that may have been tampered with; restoring it must
// never write outside the private directory.
func TestRestoreRefusesHostileTarballs(t *testing.T) {
	cases := map[string][]tar.Header{
		"dotdot":        {{Name: ".git/../../escape", Typeflag: tar.TypeReg, Mode: 0o644}},
		"absolute":      {{Name: "/tmp/escape", Typeflag: tar.TypeReg, Mode: 0o644}},
		"outside .git":  {{Name: "escape", Typeflag: tar.TypeReg, Mode: 0o644}},
		"symlink":       {{Name: ".git/link", Typeflag: tar.TypeSymlink, Linkname: "/"}},
		"hardlink":      {{Name: ".git/link", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}},
		"device":        {{Name: ".git/dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}},
		"duplicate":     {{Name: ".git/a", Typeflag: tar.TypeReg, Mode: 0o644}, {Name: ".git/a", Typeflag: tar.TypeReg, Mode: 0o644}},
		"empty tarball": {},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "repo")
			os.Mkdir(dir, 0o700)
			err := restoreDir(tarOf(t, entries...), dir)
			if !errors.Is(err, core.ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
			got, _ := os.ReadDir(parent)
			if len(got) != 1 {
				t.Fatalf("restore wrote beside its directory: %v", got)
			}
			// The in-memory reader applies the same checks.
			if _, _, err := (Opener{}).ReadRepoFile(context.Background(), tarOf(t, entries...), strings.Repeat("0", 40), "Runfile"); !errors.Is(err, core.ErrCorrupt) {
				t.Fatalf("ReadRepoFile: got %v, want ErrCorrupt", err)
			}
		})
	}
	if _, err := (Opener{}).OpenRepo(context.Background(), t.TempDir(), []byte("not a tar at all")); !errors.Is(err, core.ErrCorrupt) {
		t.Fatalf("junk tarball: %v", err)
	}
	// A well-formed tar of a directory that is not a repository.
	notRepo := tarOf(t, tar.Header{Name: ".git/", Typeflag: tar.TypeDir, Mode: 0o755}, tar.Header{Name: ".git/x", Typeflag: tar.TypeReg, Mode: 0o644})
	if _, err := (Opener{}).OpenRepo(context.Background(), t.TempDir(), notRepo); !errors.Is(err, core.ErrCorrupt) {
		t.Fatalf("tar without a repository: %v", err)
	}
	if _, _, err := (Opener{}).ReadRepoFile(context.Background(), notRepo, strings.Repeat("0", 40), "Runfile"); !errors.Is(err, core.ErrCorrupt) {
		t.Fatalf("ReadRepoFile of a tar without a repository: %v", err)
	}
}

// TestReadRepoFileMatchesDisk: reading in memory gives what the restored
// repository gives, for every commit, and ErrNotFound for what is missing.
func TestReadRepoFileMatchesDisk(t *testing.T) {
	ctx := context.Background()
	r := openNew(t)
	var hashes []string
	for i := range 40 {
		c, err := r.CommitFile(ctx, fmt.Sprintf("d%d/Runfile", i%3), []byte(fmt.Sprintf("FROM x\n# %d\n", i)), "c\n", alice)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, c.Hash)
	}
	tarball, err := r.Archive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range hashes {
		p := fmt.Sprintf("d%d/Runfile", i%3)
		want, wantBlob, err := r.ReadFile(ctx, h, p)
		if err != nil {
			t.Fatal(err)
		}
		got, blob, err := (Opener{}).ReadRepoFile(ctx, tarball, h, p)
		if err != nil || !bytes.Equal(got, want) || blob != wantBlob {
			t.Fatalf("commit %d: in memory %q %s %v, on disk %q %s", i, got, blob, err, want, wantBlob)
		}
	}
	if _, _, err := (Opener{}).ReadRepoFile(ctx, tarball, hashes[0], "nope"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("missing path: %v", err)
	}
	if _, _, err := (Opener{}).ReadRepoFile(ctx, tarball, strings.Repeat("1", 40), "d0/Runfile"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("missing commit: %v", err)
	}
}

// TestRestoreRefusesTruncated cuts a repository's tarball at every block
// boundary and inside every block: archive/tar reads some of those cuts as
// a complete archive, and restore must refuse them all.
func TestRestoreRefusesTruncated(t *testing.T) {
	ctx := context.Background()
	r := openNew(t)
	for i := range 3 {
		if _, err := r.CommitFile(ctx, "Runfile", fmt.Appendf(nil, "FROM x\n# %d\n", i), "c\n", alice); err != nil {
			t.Fatal(err)
		}
	}
	tarball, err := r.Archive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := restoreDir(tarball, t.TempDir()); err != nil {
		t.Fatalf("the whole tarball: %v", err)
	}
	for n := 512; n < len(tarball); n += 256 {
		if err := restoreDir(tarball[:n], t.TempDir()); !errors.Is(err, core.ErrCorrupt) {
			t.Fatalf("cut at %d of %d bytes: %v, want ErrCorrupt", n, len(tarball), err)
		}
	}
}
