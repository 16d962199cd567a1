package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/runprov/runprov/core/coretest"
)

// damagedStore is a copy of a store that runprov itself damaged before its
// pack compaction wrote each object once: the Runfile went A, B, A, c1, c2
// in one repo, and the last merged pack holds more entries than its index,
// so commit B's Runfile and commit c1 cannot be read.
func damagedStore(t *testing.T) string {
	t.Helper()
	store := newCLIStore(t)
	f, err := os.Open("../../testdata/store/reverted-runfile.db.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(store, "runprov.db"+suffix))
	}
	out, err := os.Create(filepath.Join(store, "runprov.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return store
}

// gitFsck runs the git CLI's fsck --strict on a repository tarball.
func gitFsck(t *testing.T, tarball []byte) (string, error) {
	t.Helper()
	git := coretest.RequireBinary(t, "git")
	dir := t.TempDir()
	untar(t, tarball, dir)
	out, err := exec.Command(git, "--git-dir", filepath.Join(dir, ".git"), "fsck", "--strict", "--no-dangling").CombinedOutput()
	return string(out), err
}

var reLogHash = regexp.MustCompile(`(?m)^"?([0-9a-f]{40})"?,`)

func TestFsckRepairRebuildsDamagedPack(t *testing.T) {
	store := damagedStore(t)
	db := storeDB(t, store)
	if out, err := gitFsck(t, repoTarball(t, db, "default")); err == nil || !strings.Contains(out, "claims to have 12 objects while index indicates 10") {
		t.Fatalf("the fixture should be damaged as git sees it: %v\n%s", err, out)
	}
	rowsBefore, _ := mustCLI(t, 0, store, "query", "SELECT hash, path, blob, seq FROM commits ORDER BY seq")

	out, _ := mustCLI(t, 125, store, "fsck")
	for _, want := range []string{
		`repo "default": object store damaged: `,
		"the pack holds 12 entries, its index lists 10 objects",
		"runprov fsck --repair",
		"Runfile missing from the commit",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("fsck of the damaged store lacks %q:\n%s", want, out)
		}
	}

	out, _ = mustCLI(t, 0, store, "fsck", "--repair")
	if !strings.Contains(out, `repair: repo "default": rebuilt from 13 objects`) || !strings.Contains(out, "5 commit Runfile(s) kept, 0 lost") {
		t.Errorf("fsck --repair:\n%s", out)
	}
	fsckHolds(t, store)
	if out, err := gitFsck(t, repoTarball(t, db, "default")); err != nil {
		t.Fatalf("git fsck --strict of the repaired repository: %v\n%s", err, out)
	}
	if after, _ := mustCLI(t, 0, store, "query", "SELECT hash, path, blob, seq FROM commits ORDER BY seq"); after != rowsBefore {
		t.Fatalf("repair changed the commit rows:\n%s\n---\n%s", rowsBefore, after)
	}
	// Every commit's Runfile reads back, in the order it was written.
	csv, _ := mustCLI(t, 0, store, "--csv", "log")
	var hashes []string
	for _, m := range reLogHash.FindAllStringSubmatch(csv, -1) {
		hashes = append([]string{m[1]}, hashes...)
	}
	if len(hashes) != 5 {
		t.Fatalf("log lists %d commits, want 5:\n%s", len(hashes), csv)
	}
	for i, want := range []string{"A", "B", "A", "c1", "c2"} {
		got, _ := mustCLI(t, 0, store, "cat", hashes[i])
		if !strings.Contains(got, `CMD ["echo","`+want+`"]`) {
			t.Errorf("commit %d (%s) reads %q, want the Runfile echoing %s", i, hashes[i][:12], got, want)
		}
	}
	// The repository takes new commits again, and a second repair has
	// nothing to do and leaves the tarball as it is.
	f := filepath.Join(t.TempDir(), "Runfile")
	if err := os.WriteFile(f, []byte(strings.Replace(mustCat(t, store, hashes[4]), `"c2"`, `"c3"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, 0, store, "add", f)
	before, _ := mustCLI(t, 0, store, "query", "SELECT tarball_sha256 FROM repos")
	out, _ = mustCLI(t, 0, store, "fsck", "--repair", "--repo", "default")
	if !strings.Contains(out, "nothing to do") {
		t.Errorf("second repair:\n%s", out)
	}
	if after, _ := mustCLI(t, 0, store, "query", "SELECT tarball_sha256 FROM repos"); after != before {
		t.Errorf("a repair with nothing to do rewrote the tarball")
	}
}

func mustCat(t *testing.T, store, commit string) string {
	t.Helper()
	out, _ := mustCLI(t, 0, store, "cat", commit)
	return out
}

// TestFsckRepairListsWhatIsLost deletes one Runfile's blob outright: the
// repair keeps every other commit, names the one that is lost, keeps its
// row, and fsck goes on failing on it.
func TestFsckRepairListsWhatIsLost(t *testing.T) {
	git := coretest.RequireBinary(t, "git")
	store, hashes := fsckStore(t)
	db := storeDB(t, store)
	var blob string
	if err := db.QueryRow("SELECT blob FROM commits WHERE hash = ?", hashes[0]).Scan(&blob); err != nil {
		t.Fatal(err)
	}
	// Unpack every object loose with the git CLI, then drop the blob.
	dir := t.TempDir()
	untar(t, repoTarball(t, db, "default"), dir)
	gitDir := filepath.Join(dir, ".git")
	packs, _ := filepath.Glob(filepath.Join(gitDir, "objects", "pack", "pack-*"))
	unpack := filepath.Join(t.TempDir(), "u")
	if out, err := exec.Command(git, "init", "-q", "--bare", unpack).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, p := range packs {
		if strings.HasSuffix(p, ".pack") {
			cmd := exec.Command(git, "--git-dir", unpack, "unpack-objects", "-q")
			in, _ := os.Open(p)
			cmd.Stdin = in
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("unpack-objects: %v\n%s", err, out)
			}
			in.Close()
		}
		os.Remove(p)
	}
	os.RemoveAll(filepath.Join(gitDir, "objects"))
	if err := os.Rename(filepath.Join(unpack, "objects"), filepath.Join(gitDir, "objects")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(gitDir, "objects", blob[:2], blob[2:])); err != nil {
		t.Fatal(err)
	}
	setTarball(t, db, "default", tarDir(t, dir))
	db.Close()

	out, _ := mustCLI(t, 125, store, "fsck", "--repair")
	for _, want := range []string{
		`repair: repo "default": rebuilt from `,
		"1 commit Runfile(s) kept, 1 lost",
		`LOST commit ` + hashes[0] + ` Runfile: the Runfile cannot be read`,
		`repair: repo "other": object store whole`,
		`repo "default" commit ` + hashes[0][:12] + ` Runfile: Runfile missing from the commit`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("fsck --repair lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "LOST commit "+hashes[1]) {
		t.Errorf("the intact commit is listed as lost:\n%s", out)
	}
	got, _ := mustCLI(t, 0, store, "query", "SELECT count(*) FROM commits")
	if !strings.Contains(got, "3") {
		t.Errorf("commit rows after a lossy repair:\n%s", got)
	}
	mustCLI(t, 0, store, "cat", hashes[1])
	js, _ := mustCLI(t, 125, store, "--json", "fsck", "--repair")
	if !strings.Contains(js, `"lost": [`) || !strings.Contains(js, hashes[0]) {
		t.Errorf("fsck --repair --json:\n%s", js)
	}
}

// tarDir archives dir/.git as the store keeps repositories.
func tarDir(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(filepath.Join(dir, ".git"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: 0o755})
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o644, Size: int64(len(data))}); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
