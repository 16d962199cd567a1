package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/core/coretest"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/plugins/consumer"
)

// integrityPeer is one store in the property test and what it must keep:
// every (commit, path) it ever committed or pulled, with the bytes.
type integrityPeer struct {
	name string
	c    *consumer.Consumer
	st   *sqlite.Store
	kept map[string][]byte // "repo commit path" -> Runfile bytes
}

// TestAddPushPullNeverLosesARunfile drives two real stores through random
// adds, pushes and pulls over a few repos and paths, with a small pool of
// contents so that reverts and one path taking another's old bytes are
// common, and author times that often fall in the same second. After every
// step each store passes fsck, every Runfile it ever held reads back byte
// for byte, and git fsck --strict of the stored repository is clean.
func TestAddPushPullNeverLosesARunfile(t *testing.T) {
	git := coretest.RequireBinary(t, "git")
	seeds, steps := 6, 45
	if n, err := strconv.Atoi(os.Getenv("RUNPROV_PROPERTY_SEEDS")); err == nil && n > 0 {
		seeds = n
	}
	for seed := 1; seed <= seeds; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			propertyRun(t, git, int64(seed), steps)
		})
	}
}

func propertyRun(t *testing.T, git string, seed int64, steps int) {
	ctx := context.Background()
	rng := rand.New(rand.NewSource(seed))
	repos := []string{"default", "study"}
	paths := []string{"Runfile", "a/Runfile", "a/b/x.Runfile", "z.Runfile"}
	contents := make([][]byte, 4)
	for i := range contents {
		contents[i] = runfileText(i)
	}
	remotes := map[string]string{}
	for _, r := range repos {
		remotes[r] = bareRepo(t)
	}
	var peers []*integrityPeer
	for _, n := range []string{"A", "B"} {
		c, st := newConsumer(t)
		peers = append(peers, &integrityPeer{name: n, c: c, st: st, kept: map[string][]byte{}})
	}
	base := time.Unix(1700000000, 0).UTC()
	for step := 0; step < steps; step++ {
		p := peers[rng.Intn(len(peers))]
		repo := repos[rng.Intn(len(repos))]
		var did string
		switch k := rng.Intn(10); {
		case k < 7:
			path, data := paths[rng.Intn(len(paths))], contents[rng.Intn(len(contents))]
			// Mostly the same second, sometimes the next: git's time has
			// one-second resolution, so equal commits are likely.
			when := base.Add(time.Duration(rng.Intn(2)) * time.Second)
			res, err := p.c.Add(ctx, consumer.AddRequest{Repo: repo, Path: path, Source: path, Data: data,
				Author: core.Signature{Name: "Alice", Email: "alice@example.org", When: when}})
			if err != nil {
				t.Fatalf("step %d: %s add %s:%s: %v", step, p.name, repo, path, err)
			}
			p.kept[repo+" "+res.Hash+" "+path] = data
			did = fmt.Sprintf("add %s:%s", repo, path)
		case k < 8:
			_, err := p.c.Push(ctx, consumer.PushRequest{Repo: repo, Remote: core.Remote{URL: remotes[repo]}})
			if err != nil && !errors.Is(err, core.ErrNotFound) && !errors.Is(err, core.ErrNonFastForward) {
				t.Fatalf("step %d: %s push %s: %v", step, p.name, repo, err)
			}
			did = "push " + repo
		default:
			res, err := p.c.Pull(ctx, consumer.PullRequest{Repo: repo, Remote: core.Remote{URL: remotes[repo]}})
			if err != nil && !errors.Is(err, core.ErrDiverged) && !errors.Is(err, core.ErrNotFound) {
				t.Fatalf("step %d: %s pull %s: %v", step, p.name, repo, err)
			}
			for _, row := range res.Indexed {
				data, _, err := p.c.Cat(ctx, row.Hash+":"+row.Path)
				if err != nil {
					t.Fatalf("step %d: %s cat pulled %s:%s: %v", step, p.name, row.Hash, row.Path, err)
				}
				p.kept[repo+" "+row.Hash+" "+row.Path] = data
			}
			did = "pull " + repo
		}
		// Only p's repo changed; the others were checked when they did.
		p.mustHold(t, git, repo, fmt.Sprintf("step %d (%s %s)", step, p.name, did))
	}
}

// mustHold checks fsck of the store, and every kept Runfile and git fsck of
// one repo.
func (p *integrityPeer) mustHold(t *testing.T, git, only, when string) {
	t.Helper()
	ctx := context.Background()
	if err := p.c.Check(ctx, func(pr core.Problem) {
		t.Fatalf("%s: store %s: fsck: %s: %s", when, p.name, pr.Where, pr.What)
	}); err != nil {
		t.Fatalf("%s: store %s: fsck: %v", when, p.name, err)
	}
	arts, err := p.st.Repos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checked, want := 0, 0
	for key := range p.kept {
		if strings.HasPrefix(key, only+" ") {
			want++
		}
	}
	for _, a := range arts {
		if a.Name != only {
			continue
		}
		art, err := p.st.Repo(ctx, a.Name)
		if err != nil {
			t.Fatal(err)
		}
		// Each repo is read on its own: the same commit may sit in two.
		repo, err := p.c.Git.OpenRepo(ctx, t.TempDir(), art.Tarball)
		if err != nil {
			t.Fatalf("%s: store %s: open repo %s: %v", when, p.name, a.Name, err)
		}
		for key, want := range p.kept {
			var name, hash, path string
			fmt.Sscan(key, &name, &hash, &path)
			if name != a.Name {
				continue
			}
			got, _, err := repo.ReadFile(ctx, hash, path)
			if err != nil || string(got) != string(want) {
				t.Fatalf("%s: store %s repo %s: %s:%s reads %q, %v; want %q", when, p.name, name, hash[:12], path, got, err, want)
			}
			checked++
		}
		repo.Close()
		gitFsckStrict(t, git, art.Tarball, fmt.Sprintf("%s: store %s repo %s", when, p.name, a.Name))
	}
	if checked != want {
		t.Fatalf("%s: store %s: read back %d of %d Runfiles repo %s held", when, p.name, checked, want, only)
	}
}

// gitFsckStrict restores a stored tarball and runs the git CLI's fsck on it.
func gitFsckStrict(t *testing.T, git string, tarball []byte, what string) {
	t.Helper()
	dir := t.TempDir()
	coretest.TarEntries(t, tarball, func(name string, data []byte) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	})
	out, err := exec.Command(git, "--git-dir", filepath.Join(dir, ".git"), "fsck", "--strict", "--no-dangling").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: git fsck --strict: %v\n%s", what, err, out)
	}
}
