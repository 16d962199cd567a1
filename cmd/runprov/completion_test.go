package main

import (
	"strings"
	"testing"

	"github.com/runprov/runprov/drivers/sqlite/sqlitetest"
)

// complete runs cobra's hidden __complete command and returns the values
// offered (descriptions dropped) and the directive line.
func complete(t *testing.T, store string, args ...string) ([]string, string) {
	t.Helper()
	out, _ := mustCLI(t, 0, store, append([]string{"__complete"}, args...)...)
	var vals []string
	directive := ""
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, ":") {
			directive = line
			continue
		}
		v, _, _ := strings.Cut(line, "\t")
		vals = append(vals, v)
	}
	return vals, directive
}

// TestCompletion: shell completion offers run ids, commits, repositories,
// image digests, tags and --format values from the store.
func TestCompletion(t *testing.T) {
	store := historyStore(t, 3, 0, false)
	commit := addAt(t, store, "cohort", "Runfile", "FROM busybox@sha256:"+strings.Repeat("d", 64)+"\nCMD [\"true\"]\n")
	lay, digest := busyboxLayout(t)
	mustCLI(t, 0, store, "image", "import", lay)
	run := sqlitetest.RunID(2)
	mustCLI(t, 0, store, "tag", run, "paper-v1")

	has := func(what string, vals []string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !contains(vals, w) {
				t.Errorf("%s: %q not offered in %v", what, w, vals)
			}
		}
	}
	vals, dir := complete(t, store, "show", "")
	has("show", vals, run, "last", "last~1")
	if dir != ":4" {
		t.Errorf("show: directive %s, want :4 (no file completion)", dir)
	}
	vals, _ = complete(t, store, "show", run[:6])
	if len(vals) != 1 || vals[0] != run {
		t.Errorf("show %s: %v, want only %s", run[:6], vals, run)
	}
	vals, _ = complete(t, store, "diff", run, "")
	has("diff's second run", vals, run)
	if vals, _ := complete(t, store, "diff", run, run, ""); len(vals) != 0 {
		t.Errorf("diff's third argument: %v, want nothing", vals)
	}
	for _, c := range []string{"run", "cat", "log"} {
		vals, _ = complete(t, store, c, "")
		has(c, vals, commit, "cohort", "HEAD")
	}
	vals, _ = complete(t, store, "runs", "--repo", "")
	has("runs --repo", vals, "cohort")
	vals, _ = complete(t, store, "runs", "--tag", "")
	has("runs --tag", vals, "paper-v1")
	for _, c := range []string{"verify", "approve", "inspect", "rm"} {
		vals, _ = complete(t, store, "image", c, "sha256:")
		has("image "+c, vals, digest)
	}
	vals, _ = complete(t, store, "export", run, "--format", "")
	has("export --format", vals, "json", "intoto", "prov", "rocrate")
	vals, _ = complete(t, store, "trace", "--format", "")
	has("trace --format", vals, "dot", "prov")
	vals, _ = complete(t, store, "run", commit, "--runtime", "")
	has("run --runtime", vals, "runc", "ch-run")
}
