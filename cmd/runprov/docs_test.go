package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/runprov/runprov/core/coretest"
	"github.com/runprov/runprov/plugins/history"
)

const repoRoot = "../.."

// ownDocsURL is where runprov's own documentation is published; links to it
// (such as the in-toto export's buildType) are checked against the files here.
const ownDocsURL = "https://github.com/runprov/runprov/blob/main/"

// markdownFiles are the README and every page under docs/.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	files := []string{filepath.Join(repoRoot, "README.md")}
	err := filepath.WalkDir(filepath.Join(repoRoot, "docs"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile("(?m)^#{1,6} +(.+?) *#*$")
	mdFence   = regexp.MustCompile("(?ms)^```.*?^```")
)

// anchors are the ids GitHub gives a page's headings: lower case, spaces to
// hyphens, punctuation other than hyphens and underscores dropped, and a
// -N suffix for the Nth repeat.
func anchors(text string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	for _, m := range mdHeading.FindAllStringSubmatch(mdFence.ReplaceAllString(text, ""), -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
				b.WriteRune(r)
			}
		}
		id := b.String()
		if n := seen[id]; n > 0 {
			out[id+"-"+strconv.Itoa(n)] = true
		} else {
			out[id] = true
		}
		seen[id]++
	}
	return out
}

// checkLink reports whether target, a link in file, resolves to a file here
// and, with a #fragment, to a heading of that file.
func checkLink(t *testing.T, file, target string) {
	t.Helper()
	if rest, ok := strings.CutPrefix(target, ownDocsURL); ok {
		target = filepath.Join(repoRoot, rest)
		file = ""
	}
	if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
		return // outside this repository: not checked offline
	}
	path, frag, _ := strings.Cut(target, "#")
	switch {
	case path == "":
		path = file
	case file != "":
		path = filepath.Join(filepath.Dir(file), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%s: link %s: %v", file, target, err)
		return
	}
	if frag != "" && !anchors(string(data))[frag] {
		t.Errorf("%s: link %s: %s has no heading with the anchor #%s", file, target, path, frag)
	}
}

// TestDocsLinksResolve checks every relative link and anchor of the README
// and docs/, and the documentation URLs the exports point at.
func TestDocsLinksResolve(t *testing.T) {
	files := markdownFiles(t)
	if len(files) < 10 {
		t.Fatalf("found %d Markdown files; want the README and the docs/ pages", len(files))
	}
	links := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(mdFence.ReplaceAllString(string(data), ""), -1) {
			checkLink(t, f, m[1])
			links++
		}
	}
	if links < 20 {
		t.Errorf("checked only %d links", links)
	}
	checkLink(t, "", history.BuildType)
}

// TestDocsAnchorsRule pins the heading-id rule the link check relies on.
func TestDocsAnchorsRule(t *testing.T) {
	got := anchors("# Remotes: `push`, `pull`\n## Provenance build type: run v1\n```\n# not a heading\n```\n## A b\n## A b\n")
	for _, want := range []string{"remotes-push-pull", "provenance-build-type-run-v1", "a-b", "a-b-1"} {
		if !got[want] {
			t.Errorf("anchor %q missing from %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Errorf("a line in a code block became an anchor")
	}
}

// TestCLIReferenceUpToDate generates the Markdown reference and the man
// pages from the command tree and compares them with docs/cli and docs/man.
func TestCLIReferenceUpToDate(t *testing.T) {
	tmp := t.TempDir()
	if dir := os.Getenv("RUNPROV_WRITE_DOCS"); dir != "" { // make man
		tmp = dir
	}
	md, man := filepath.Join(tmp, "cli"), filepath.Join(tmp, "man")
	root := newRootCmd(&app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard})
	if err := genDocs(root, md, man); err != nil {
		t.Fatal(err)
	}
	for gen, committed := range map[string]string{md: filepath.Join(repoRoot, "docs", "cli"), man: filepath.Join(repoRoot, "docs", "man")} {
		compareDirs(t, gen, committed)
	}
}

func compareDirs(t *testing.T, gen, committed string) {
	t.Helper()
	want, err := os.ReadDir(gen)
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadDir(committed)
	if err != nil {
		t.Fatalf("%v: run make man", err)
	}
	names := map[string]bool{}
	for _, e := range have {
		names[e.Name()] = true
	}
	for _, e := range want {
		g, _ := os.ReadFile(filepath.Join(gen, e.Name()))
		c, err := os.ReadFile(filepath.Join(committed, e.Name()))
		if err != nil {
			t.Errorf("%s/%s is missing: run make man", committed, e.Name())
			continue
		}
		if !bytes.Equal(g, c) {
			t.Errorf("%s/%s is stale: run make man", committed, e.Name())
		}
		delete(names, e.Name())
	}
	for n := range names {
		t.Errorf("%s/%s documents no command: run make man (it removes stale pages)", committed, n)
	}
}

// TestReadmeQuickStart runs the README's quick start as written, with bash,
// from the repository, in a temporary directory.
func TestReadmeQuickStart(t *testing.T) {
	requireRunc(t)
	for _, b := range []string{"bash", "make", "go", "sed"} {
		coretest.RequireBinary(t, b)
	}
	data, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), "## Quick start")
	if !ok {
		t.Fatal("README.md has no Quick start section")
	}
	_, block, ok := strings.Cut(after, "```sh\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("the Quick start has no ```sh block")
	}
	tmp := t.TempDir()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", block)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "RUNPROV_STORE=")
	out, err := cmd.CombinedOutput()
	stores, _ := filepath.Glob(filepath.Join(tmp, "*", "store"))
	for _, s := range stores {
		checkNoContainers(t, s)
	}
	if err != nil {
		t.Fatalf("the README's quick start failed: %v\n%s", err, out)
	}
	for _, want := range []string{"succeeded", "cohort summary"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the quick start's output lacks %q:\n%s", want, out)
		}
	}
	if len(stores) != 1 {
		t.Errorf("the quick start made %d stores under TMPDIR, want 1", len(stores))
	}
}
