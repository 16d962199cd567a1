package consumer_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/core/coretest"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/plugins/consumer"
)

func TestAddFrom(t *testing.T) {
	ctx := context.Background()
	bare := bareRepo(t)
	work := workTree(t, bare)
	c1 := commitFiles(t, work, "one", map[string]string{
		"a/Runfile":     string(runfileText(1)),
		"b/job.Runfile": string(runfileText(2)),
		"c/x.rf":        string(runfileText(3)),
		"src/main.go":   "package main\n",
	})
	coretest.Git(t, work, "tag", "-a", "v1", "-m", "v1")
	c2 := commitFiles(t, work, "two", map[string]string{"a/Runfile": string(runfileText(4))})
	coretest.Git(t, work, "checkout", "-q", "-b", "dev")
	c3 := commitFiles(t, work, "three", map[string]string{"c/x.rf": badRunfile})
	coretest.Git(t, work, "push", "-q", "origin", "main", "dev", "v1")

	c, st := newConsumer(t)
	// The default globs select a/Runfile and b/job.Runfile, its content
	// c/x.rf.
	res, err := c.AddFrom(ctx, consumer.AddFromRequest{Repo: "tagged", Remote: core.Remote{URL: bare}, Ref: "v1"})
	if err != nil || res.Head != c1 || res.Ref != "refs/tags/v1" || len(res.Indexed) != 3 {
		t.Fatalf("add --from at v1: %+v %v", res, err)
	}
	res, err = c.AddFrom(ctx, consumer.AddFromRequest{Repo: "rf", Remote: core.Remote{URL: bare}, Paths: []string{"c/*.rf"}})
	if err != nil || res.Head != c2 || len(res.Indexed) != 1 || res.Indexed[0].Path != "c/x.rf" {
		t.Fatalf("add --from --path c/*.rf at HEAD: %+v %v", res, err)
	}
	// Into a repo that has the remote's older history it fast-forwards.
	res, err = c.AddFrom(ctx, consumer.AddFromRequest{Repo: "tagged", Remote: core.Remote{URL: bare}, Ref: "main"})
	if err != nil || res.Old != c1 || res.Head != c2 || len(res.Indexed) != 1 || res.Indexed[0].Path != "a/Runfile" {
		t.Fatalf("add --from fast-forward: %+v %v", res, err)
	}
	// dev has an invalid Runfile under an already indexed path.
	before := repoState(t, st, "rf")
	_, err = c.AddFrom(ctx, consumer.AddFromRequest{Repo: "rf", Remote: core.Remote{URL: bare}, Ref: "dev"})
	if !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), c3) || !strings.Contains(err.Error(), "c/x.rf") {
		t.Fatalf("add --from with an invalid Runfile: %v", err)
	}
	if after := repoState(t, st, "rf"); after != before {
		t.Fatalf("refused add --from changed the store: %s -> %s", before, after)
	}
	// Into a repo with its own history: refused as diverged.
	add(t, c, "local", "Runfile", runfileText(8))
	before = repoState(t, st, "local")
	if _, err := c.AddFrom(ctx, consumer.AddFromRequest{Repo: "local", Remote: core.Remote{URL: bare}}); !errors.Is(err, core.ErrDiverged) || !strings.Contains(err.Error(), "--repo") {
		t.Fatalf("add --from into an unrelated repo: %v", err)
	}
	if after := repoState(t, st, "local"); after != before {
		t.Fatalf("refused add --from changed the store: %s -> %s", before, after)
	}
	if _, err := c.AddFrom(ctx, consumer.AddFromRequest{Repo: "x", Remote: core.Remote{URL: bare}, Ref: "nope"}); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("add --from a missing ref: %v", err)
	}
	if _, err := st.Repo(ctx, "x"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("a failed add --from created the repo: %v", err)
	}
	fsckClean(t, c)
	// The repositories made or moved by add --from keep no trace of the
	// remote.
	for _, name := range []string{"tagged", "rf"} {
		noRemoteTrace(t, st, name, bare)
	}
}

// noRemoteTrace fails if repo name's stored tarball, raw or file by file,
// holds a remote section, a remote-tracking ref, FETCH_HEAD or any of
// secrets.
func noRemoteTrace(t *testing.T, st *sqlite.Store, name string, secrets ...string) {
	t.Helper()
	art, err := st.Repo(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	needles := append([]string{"[remote", "[branch", "refs/remotes", "refs/runprov", "FETCH_HEAD"}, secrets...)
	check := func(where string, data []byte) {
		t.Helper()
		for _, n := range needles {
			if bytes.Contains(data, []byte(n)) {
				t.Errorf("repo %s: %s holds %q", name, where, n)
			}
		}
	}
	check("the tarball", art.Tarball)
	config := false
	coretest.TarEntries(t, art.Tarball, func(entry string, data []byte) {
		config = config || entry == ".git/config"
		check("entry name "+entry, []byte(entry))
		check(entry, data)
	})
	if !config {
		t.Fatalf("repo %s: the tarball has no .git/config; nothing was checked", name)
	}
}

func TestSelectorGlobs(t *testing.T) {
	ctx := context.Background()
	bare := bareRepo(t)
	work := workTree(t, bare)
	commitFiles(t, work, "files", map[string]string{
		"Runfile":            string(runfileText(1)),
		"deep/er/Runfile":    string(runfileText(2)),
		"deep/x.Runfile":     string(runfileText(3)),
		"deep/Runfile.bak":   "nope\n",
		"analysis/a/Runfile": string(runfileText(4)),
		"analysis/b/other":   string(runfileText(5)),
	})
	coretest.Git(t, work, "push", "-q", "origin", "main")
	for _, tc := range []struct {
		globs []string
		want  string
	}{
		{nil, "Runfile analysis/a/Runfile analysis/b/other deep/er/Runfile deep/x.Runfile"}, // other by content
		{[]string{"analysis/*/*"}, "analysis/a/Runfile analysis/b/other"},
		{[]string{"other", "x.*"}, "analysis/b/other deep/x.Runfile"},
	} {
		c, _ := newConsumer(t)
		res, err := c.AddFrom(ctx, consumer.AddFromRequest{Remote: core.Remote{URL: bare}, Paths: tc.globs})
		if err != nil {
			t.Fatalf("%v: %v", tc.globs, err)
		}
		var got []string
		for _, r := range res.Indexed {
			got = append(got, r.Path)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("--path %v indexed %v, want %s", tc.globs, got, tc.want)
		}
	}
}
