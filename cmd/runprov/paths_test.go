package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/core/coretest"
)

// addStudy adds cohort-summary.rf (at its base name) and analysis/x.rf to
// repo study of store and returns their bytes and commits, oldest first.
func addStudy(t *testing.T, store string) (texts, hashes []string) {
	t.Helper()
	dir := t.TempDir()
	for i, p := range []string{"cohort-summary.rf", "analysis/x.rf"} {
		f := filepath.Join(dir, fmt.Sprintf("%d-%s", i, filepath.Base(p)))
		if i == 0 {
			f = filepath.Join(dir, p)
		}
		text := remoteRunfile(100 + i)
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"add", "--repo", "study", f}
		if i > 0 {
			args = append(args, "--path", p)
		}
		out, _ := mustCLI(t, 0, store, args...)
		texts, hashes = append(texts, text), append(hashes, strings.TrimSpace(out))
	}
	return texts, hashes
}

// logRows is runprov log --json.
func logRows(t *testing.T, store string, args ...string) []core.Commit {
	t.Helper()
	out, _ := mustCLI(t, 0, store, append([]string{"--json", "log"}, args...)...)
	var rows []core.Commit
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("log --json: %v\n%s", err, out)
	}
	return rows
}

func TestRemoteCLIRunfileAnyPath(t *testing.T) {
	a, b := newCLIStore(t), newCLIStore(t)
	bare := remoteBare(t, t.TempDir(), "study.git")
	texts, hashes := addStudy(t, a)
	mustCLI(t, 0, a, "push", bare, "--repo", "study")

	// Git itself reads the trailers: one per commit, naming the path, and
	// the subject is untouched.
	if got := coretest.Git(t, bare, "log", "--format=%s|%(trailers:key=Runprov-Runfile,valueonly,separator=%x2C)", "main"); got != "Add analysis/x.rf|analysis/x.rf\nAdd cohort-summary.rf|cohort-summary.rf" {
		t.Fatalf("git log of the pushed commits:\n%s", got)
	}
	if got := coretest.Git(t, bare, "log", "-1", "--format=%B", hashes[0]); got != "Add cohort-summary.rf\n\nRunprov-Runfile: cohort-summary.rf" {
		t.Fatalf("commit message:\n%q", got)
	}

	mustCLI(t, 0, b, "pull", "file://"+bare, "--repo", "study")
	out, _ := mustCLI(t, 0, b, "--csv", "log", "--repo", "study")
	for i, p := range []string{"cohort-summary.rf", "analysis/x.rf"} {
		if !strings.Contains(out, hashes[i]+",study,"+p+",") || !strings.Contains(out, ",Add "+p+"\n") {
			t.Fatalf("log after the pull lacks %s at %s:\n%s", p, hashes[i], out)
		}
		if got, _ := mustCLI(t, 0, b, "cat", hashes[i][:10]); got != texts[i] {
			t.Fatalf("cat %s: %q, want %q", hashes[i], got, texts[i])
		}
	}
	sameLogAndCat(t, a, b, hashes)
	fsckHolds(t, b)
	// The trailers win over globs that would skip both files.
	c := newCLIStore(t)
	mustCLI(t, 0, c, "pull", bare, "--repo", "study", "--path", "Runfile")
	sameLogAndCat(t, a, c, hashes)

	// A message that ends in a trailer block gets the trailer in that
	// block, as git interpret-trailers would put it.
	f := filepath.Join(t.TempDir(), "signed.rf")
	os.WriteFile(f, []byte(remoteRunfile(7)), 0o644)
	out, _ = mustCLI(t, 0, a, "add", "--repo", "study", "-m", "Sign it\n\nbody text\n\nSigned-off-by: Ann <ann@example.org>", f)
	mustCLI(t, 0, a, "push", bare, "--repo", "study")
	signed := strings.TrimSpace(out)
	if got := coretest.Git(t, bare, "log", "-1", "--format=%(trailers:only,unfold)", signed); got != "Signed-off-by: Ann <ann@example.org>\nRunprov-Runfile: signed.rf" {
		t.Fatalf("git reads the trailers as:\n%q", got)
	}
	msg := coretest.Git(t, bare, "log", "-1", "--format=%B", signed)
	if msg != "Sign it\n\nbody text\n\nSigned-off-by: Ann <ann@example.org>\nRunprov-Runfile: signed.rf" {
		t.Fatalf("message with a trailer block:\n%q", msg)
	}
	mustCLI(t, 0, b, "pull", bare, "--repo", "study")
	if rows := logRows(t, b, "--repo", "study", "-n", "1"); len(rows) != 1 || rows[0].Path != "signed.rf" || rows[0].Message != msg+"\n" {
		t.Fatalf("log after pulling the signed commit: %+v", rows)
	}
	fsckHolds(t, b)
}

// foreignCommit commits files with the git CLI to a clone of bare, pushes
// main and returns the commit.
func foreignCommit(t *testing.T, bare string, files map[string]string) string {
	t.Helper()
	work := filepath.Join(t.TempDir(), "work")
	coretest.Git(t, t.TempDir(), "clone", "-q", bare, work)
	coretest.Git(t, work, "checkout", "-q", "-B", "main")
	for p, text := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(work, p)), 0o755)
		if err := os.WriteFile(filepath.Join(work, p), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	coretest.Git(t, work, "add", ".")
	coretest.Git(t, work, "commit", "-q", "-m", "by hand")
	coretest.Git(t, work, "push", "-q", "origin", "main")
	return coretest.Git(t, work, "rev-parse", "HEAD")
}

func TestRemoteCLIForeignRunfileByContent(t *testing.T) {
	bare := remoteBare(t, t.TempDir(), "r.git")
	text := remoteRunfile(3)
	hash := foreignCommit(t, bare, map[string]string{
		"foo.txt": text,
		// Pinned, but a build file: not a Runfile, and no reason to
		// refuse the pull either.
		"docker/Dockerfile": "FROM docker.io/library/busybox@sha256:" + strings.Repeat("a", 64) + "\nCOPY . /src\n",
		"notes.txt":         "FROM the notes\n",
		"unpinned.rf":       "FROM busybox\nCMD [\"true\"]\n",
	})
	store := newCLIStore(t)
	mustCLI(t, 0, store, "pull", bare)
	rows := logRows(t, store)
	if len(rows) != 1 || rows[0].Hash != hash || rows[0].Path != "foo.txt" || rows[0].Message != "by hand\n" {
		t.Fatalf("log after pulling a git CLI commit: %+v", rows)
	}
	if got, _ := mustCLI(t, 0, store, "cat", hash[:8]); got != text {
		t.Fatalf("cat: %q", got)
	}
	fsckHolds(t, store)

	// Globs given with --path say which files are Runfiles: content does
	// not count then.
	other := newCLIStore(t)
	mustCLI(t, 0, other, "pull", bare, "--path", "*.Runfile")
	if rows := logRows(t, other); len(rows) != 0 {
		t.Fatalf("pull --path '*.Runfile' indexed %+v", rows)
	}
}

// indexState is what reindex must not change: the repos' heads and
// tarballs, and every commit row with its order.
func indexState(t *testing.T, store string) string {
	t.Helper()
	out, _ := mustCLI(t, 0, store, "--json", "query",
		"SELECT r.name, r.head, r.tarball_sha256, c.hash, c.path, c.blob, c.message, c.seq FROM repos r LEFT JOIN commits c ON c.repo_id = r.id ORDER BY c.seq")
	return out
}

func reindexJSON(t *testing.T, store string, args ...string) []map[string]any {
	t.Helper()
	out, _ := mustCLI(t, 0, store, append([]string{"--json", "reindex"}, args...)...)
	var res []map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("reindex --json: %v\n%s", err, out)
	}
	return res
}

func TestReindexCLI(t *testing.T) {
	store := newCLIStore(t)
	addRunfiles(t, store, "Runfile")
	texts, hashes := addStudy(t, store)
	want := logRows(t, store, "--repo", "study")
	reposBefore, _ := mustCLI(t, 0, store, "--json", "query", "SELECT name, head, tarball_sha256 FROM repos ORDER BY name")
	db := storeDB(t, store)

	// The older row lost: reindex puts it back below the newer one.
	mustExec(t, db, "DELETE FROM commits WHERE hash = ?", hashes[0])
	mustCLI(t, 125, store, "cat", hashes[0])
	out, _ := mustCLI(t, 0, store, "reindex", "--repo", "study")
	if !strings.Contains(out, hashes[0][:12]) || !strings.Contains(out, "cohort-summary.rf") || strings.Contains(out, "x.rf") {
		t.Fatalf("reindex printed:\n%s", out)
	}
	if got := logRows(t, store, "--repo", "study"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("log after reindex:\n%+v\nwant\n%+v", got, want)
	}

	// Every row of the repo lost, as a pull before the trailers left it.
	if _, err := db.Exec("DELETE FROM commits WHERE repo_id = (SELECT id FROM repos WHERE name = 'study')"); err != nil {
		t.Fatal(err)
	}
	if rows := logRows(t, store, "--repo", "study"); len(rows) != 0 {
		t.Fatalf("rows left: %+v", rows)
	}
	res := reindexJSON(t, store)
	if len(res) != 2 || res[0]["repo"] != "default" || len(res[0]["indexed"].([]any)) != 0 || res[1]["repo"] != "study" || len(res[1]["indexed"].([]any)) != 2 {
		t.Fatalf("reindex --json: %+v", res)
	}
	if got := logRows(t, store, "--repo", "study"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("log after reindex:\n%+v\nwant\n%+v", got, want)
	}
	for i, h := range hashes {
		if got, _ := mustCLI(t, 0, store, "cat", h); got != texts[i] {
			t.Fatalf("cat %s after reindex: %q", h, got)
		}
	}
	if after, _ := mustCLI(t, 0, store, "--json", "query", "SELECT name, head, tarball_sha256 FROM repos ORDER BY name"); after != reposBefore {
		t.Fatalf("reindex changed the repos:\n%s\n%s", reposBefore, after)
	}
	fsckHolds(t, store)

	// Twice changes nothing.
	before := indexState(t, store)
	out, _ = mustCLI(t, 0, store, "reindex")
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("second reindex printed rows:\n%s", out)
	}
	if after := indexState(t, store); after != before {
		t.Fatalf("second reindex changed the store:\n%s\n%s", before, after)
	}
	fsckHolds(t, store)

	_, errs := mustCLI(t, 125, store, "reindex", "--repo", "nope")
	if !strings.Contains(errs, `"nope"`) || !strings.Contains(errs, "not found") {
		t.Fatalf("reindex of a missing repo said:\n%s", errs)
	}
}

func TestReindexCLIAfterGlobPull(t *testing.T) {
	bare := remoteBare(t, t.TempDir(), "r.git")
	text := remoteRunfile(5)
	hash := foreignCommit(t, bare, map[string]string{"x.rf": text, "README.md": "# hi\n"})
	store := newCLIStore(t)
	// A pull whose globs skip x.rf leaves it unindexed, and pulling again
	// cannot help: the repo is up to date.
	mustCLI(t, 0, store, "pull", bare, "--path", "Runfile")
	_, errs := mustCLI(t, 0, store, "pull", bare)
	if !strings.Contains(errs, "up to date") || len(logRows(t, store)) != 0 {
		t.Fatalf("second pull: %s", errs)
	}
	mustCLI(t, 125, store, "cat", hash)

	res := reindexJSON(t, store, "--repo", core.DefaultRepo)
	if len(res) != 1 || res[0]["commits"] != float64(1) || len(res[0]["indexed"].([]any)) != 1 {
		t.Fatalf("reindex --json: %+v", res)
	}
	rows := logRows(t, store)
	if len(rows) != 1 || rows[0].Hash != hash || rows[0].Path != "x.rf" || rows[0].Author != "Bob <bob@example.org>" {
		t.Fatalf("log after reindex: %+v", rows)
	}
	if got, _ := mustCLI(t, 0, store, "cat", hash[:7]); got != text {
		t.Fatalf("cat after reindex: %q", got)
	}
	fsckHolds(t, store)
	before := indexState(t, store)
	if res := reindexJSON(t, store); len(res[0]["indexed"].([]any)) != 0 {
		t.Fatalf("second reindex: %+v", res)
	}
	if after := indexState(t, store); after != before {
		t.Fatalf("second reindex changed the store:\n%s\n%s", before, after)
	}
	fsckHolds(t, store)
}
