package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
)

// addAt commits text at path in repo and returns the commit hash.
func addAt(t *testing.T, store, repo, path, text string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "Runfile")
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := mustCLI(t, 0, store, "add", "--repo", repo, "--path", path, f)
	return strings.TrimSpace(out)
}

// logHashes runs runprov --json log args... and returns the commit hashes.
func logHashes(t *testing.T, store string, args ...string) []string {
	t.Helper()
	out, _ := mustCLI(t, 0, store, append([]string{"--json", "log"}, args...)...)
	var rows []core.Commit
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	var hs []string
	for _, r := range rows {
		hs = append(hs, r.Hash)
	}
	return hs
}

func TestCommitNames(t *testing.T) {
	store := newCLIStore(t)
	img := "busybox@sha256:" + strings.Repeat("a", 64)
	v1 := "FROM " + img + "\nCMD [\"echo\", \"one\"]\n"
	v2 := "FROM " + img + "\nCMD [\"echo\", \"two\"]\n"
	other := "FROM " + img + "\nCMD [\"echo\", \"other\"]\n"
	c1 := addAt(t, store, "cohort", "Runfile", v1)
	c2 := addAt(t, store, "cohort", "Runfile", v2)
	c3 := addAt(t, store, "cohort", "extra/Runfile", other)
	d1 := addAt(t, store, "solo", "Runfile", other)

	catCases := []struct{ name, want string }{
		{c1, v1}, {c1[:8], v1},
		{"cohort:Runfile", v2},   // newest version of that Runfile
		{"cohort~1:Runfile", v2}, // HEAD~1 of cohort: c2
		{c2, v2},                 // the Runfile c2 records
		{"cohort~2:Runfile", v1},
		{"cohort:extra/Runfile", other}, // newest
		{c3 + ":Runfile", v2},           // a path c3 did not change, from its tree
		{c2[:10] + ":Runfile", v2},      // the path it changed
		{"solo", other},                 // a repo with one Runfile
		{"solo~0", other},
	}
	for _, c := range catCases {
		out, errs := mustCLI(t, 0, store, "cat", c.name)
		if out != c.want {
			t.Errorf("cat %s = %q, want %q (stderr %s)", c.name, out, c.want, errs)
		}
	}
	// The row of a Runfile read from a later commit's tree is the commit
	// that recorded it, so runs of the same bytes name the same commit.
	out, _ := mustCLI(t, 0, store, "--json", "cat", c3+":Runfile")
	var got struct{ Commit core.Commit }
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.Commit.Hash != c2 || got.Commit.Path != "Runfile" {
		t.Errorf("cat %s:Runfile names commit %s %s, want %s Runfile", c3[:7], got.Commit.Hash, got.Commit.Path, c2)
	}

	refusals := []struct{ name, want string }{
		{"cohort", "several Runfiles"}, // two Runfiles: name one
		{"cohort~1", "several Runfiles"},
		{"HEAD", "several repositories"},
		{"cohort~9", "only 3 commits"},
		{c1 + ":extra/Runfile", "has no file extra/Runfile"},
		{"nosuchrepo", "is not a commit hash"},
	}
	for _, c := range refusals {
		_, errs, code := cli(t, store, "cat", c.name)
		if code != exitRunprov || !strings.Contains(errs, c.want) {
			t.Errorf("cat %s: exit %d, stderr %q; want 125 and %q", c.name, code, errs, c.want)
		}
	}

	// log takes the same names: the commit and those before it.
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"cohort"}, []string{c3, c2, c1}},
		{[]string{"cohort:Runfile"}, []string{c2, c1}},
		{[]string{"cohort~1"}, []string{c2, c1}},
		{[]string{"--repo", "cohort", "HEAD~2"}, []string{c1}},
		{[]string{"HEAD", "--repo", "solo"}, []string{d1}},
		{[]string{c2[:7]}, []string{c2, c1}},
	} {
		if got := logHashes(t, store, c.args...); strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("log %v = %v, want %v", c.args, got, c.want)
		}
	}

	// A repository name wins over a hash prefix spelled the same.
	clash := c1[:6]
	addAt(t, store, clash, "Runfile", other)
	if out, _ := mustCLI(t, 0, store, "cat", clash); out != other {
		t.Errorf("cat %s = %q, want the Runfile of repository %s", clash, out, clash)
	}
	if out, _ := mustCLI(t, 0, store, "cat", c1[:7]); out != v1 {
		t.Errorf("cat %s = %q, want commit %s's Runfile", c1[:7], out, c1[:7])
	}

	// With one repository, HEAD is its head.
	one := newCLIStore(t)
	h := addAt(t, one, "default", "Runfile", v1)
	addAt(t, one, "default", "Runfile", v2)
	if out, _ := mustCLI(t, 0, one, "cat", "HEAD~1"); out != v1 {
		t.Errorf("cat HEAD~1 = %q, want the first version", out)
	}
	if got := logHashes(t, one, "HEAD~"); len(got) != 1 || got[0] != h {
		t.Errorf("log HEAD~ = %v, want [%s]", got, h)
	}
}

// TestRunByName runs a Runfile named by its repository.
func TestRunByName(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, "FROM IMAGE\nSCRATCH /scratch\nCMD [\"echo\", \"by name\"]\n")
	out, errs, code := cli(t, rs.dir, "--json", "run", "default:Runfile")
	var r core.Run
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
		t.Fatalf("run default:Runfile: exit %d\n%s\n%s", code, out, errs)
	}
	if r.Commit != rs.commit || r.Path != "Runfile" {
		t.Errorf("run default:Runfile recorded %s:%s, want %s:Runfile", r.Commit, r.Path, rs.commit)
	}
	if _, errs, code := cli(t, rs.dir, "run", "HEAD"); code != 0 || !strings.Contains(errs, "succeeded") {
		t.Errorf("run HEAD: exit %d\n%s", code, errs)
	}
}
