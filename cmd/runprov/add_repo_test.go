package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runprov/runprov/plugins/consumer"
)

// TestAddChoosesRepo: add without --repo keeps one analysis in "default"
// and puts an unrelated one with the same file name in a repository named
// after its directory, and says which.
func TestAddChoosesRepo(t *testing.T) {
	store := newCLIStore(t)
	root := t.TempDir()
	write := func(dir, from string) string {
		p := filepath.Join(root, dir, "Runfile")
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("FROM "+from+"@sha256:"+strings.Repeat("b", 64)+"\nCMD [\"true\"]\n# "+dir+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	repoOf := func(p string) string {
		t.Helper()
		_, errs := mustCLI(t, 0, store, "add", p)
		_, after, ok := strings.Cut(errs, "to repo ")
		if !ok {
			t.Fatalf("add %s does not say which repo: %q", p, errs)
		}
		return strings.TrimSuffix(strings.Fields(after)[0], ":")
	}
	for _, c := range []struct{ file, want string }{
		{write("cohort", "python"), "default"},                     // the first analysis
		{write("Cohort v2", "python"), "default"},                  // same image name: an update
		{write("Survey_2024", "rocker/r-ver"), "survey_2024"},      // another analysis
		{write("elsewhere/survey_2024", "busybox"), "survey_2024"}, // that repo exists now
	} {
		if got := repoOf(c.file); got != c.want {
			t.Errorf("add %s went to repo %s, want %s", c.file, got, c.want)
		}
	}
	// Why a new repository, and how to choose default instead.
	_, errs := mustCLI(t, 0, store, "add", write("Study-B", "alpine"))
	if !strings.Contains(errs, "to repo study-b") || !strings.Contains(errs, "another analysis at Runfile (its Runfile pins python, this one alpine); --repo default") {
		t.Errorf("add to a new repo does not say why:\n%s", errs)
	}
	if out, _ := mustCLI(t, 0, store, "log", "--repo", "default"); strings.Count(out, "\n") != 3 {
		t.Errorf("default has the wrong commits:\n%s", out)
	}
	// --repo is obeyed.
	mustCLI(t, 0, store, "add", "--repo", "default", write("third", "alpine"))
	if got := consumer.RepoNameFor("My Analysis!"); got != "my-analysis" {
		t.Errorf("RepoNameFor = %q", got)
	}
	for _, bad := range []string{"/", "default", "..."} {
		if got := consumer.RepoNameFor(bad); got != "" {
			t.Errorf("RepoNameFor(%q) = %q, want none", bad, got)
		}
	}
}
