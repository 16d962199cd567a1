package consumer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/core/coretest"
	gitdrv "github.com/runprov/runprov/drivers/git"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/plugins/consumer"
)

func runfileText(i int) []byte {
	return fmt.Appendf(nil, "FROM docker.io/library/busybox@sha256:%064x\n# revision %d\nCMD [\"/bin/true\"]\n", 7, i)
}

const badRunfile = "FROM docker.io/library/busybox:latest\nCOPY . /src\n"

// newConsumer is a consumer over a real store in a new directory.
func newConsumer(t *testing.T) (*consumer.Consumer, *sqlite.Store) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	st, _, err := sqlite.Init(context.Background(), dir, nil, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &consumer.Consumer{Store: st, Git: gitdrv.Opener{}, TmpDir: st.Layout().Tmp()}, st
}

func bareRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "remote.git")
	coretest.Git(t, t.TempDir(), "init", "-q", "--bare", "-b", "main", dir)
	return dir
}

// workTree is a git CLI clone of bare, for commits "by someone else".
func workTree(t *testing.T, bare string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "work")
	coretest.Git(t, t.TempDir(), "clone", "-q", bare, dir)
	coretest.Git(t, dir, "checkout", "-q", "-B", "main")
	return dir
}

func commitFiles(t *testing.T, dir, msg string, files map[string]string) string {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	coretest.Git(t, dir, "add", "-A")
	coretest.Git(t, dir, "commit", "-q", "-m", msg)
	return coretest.Git(t, dir, "rev-parse", "HEAD")
}

func add(t *testing.T, c *consumer.Consumer, repo, p string, data []byte) core.Commit {
	t.Helper()
	res, err := c.Add(context.Background(), consumer.AddRequest{Repo: repo, Path: p, Source: p, Data: data,
		Author: core.Signature{Name: "Alice", Email: "alice@example.org", When: time.Unix(1700000000, 0).UTC()}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Commit
}

// fsckClean fails the test if the consumer's checker reports a problem.
func fsckClean(t *testing.T, c *consumer.Consumer) {
	t.Helper()
	err := c.Check(context.Background(), func(p core.Problem) { t.Errorf("fsck: %s: %s", p.Where, p.What) })
	if err != nil {
		t.Fatal(err)
	}
}

func repoState(t *testing.T, st *sqlite.Store, name string) string {
	t.Helper()
	art, err := st.Repo(context.Background(), name)
	if errors.Is(err, core.ErrNotFound) {
		return "missing"
	}
	if err != nil {
		t.Fatal(err)
	}
	rows, err := st.Commits(context.Background(), core.CommitFilter{Repo: name})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s %s %d", art.Head, art.SHA256, len(rows))
}

func TestPullRoundTrip(t *testing.T) {
	ctx := context.Background()
	a, stA := newConsumer(t)
	add(t, a, "", "Runfile", runfileText(1))
	add(t, a, "", "analysis/Runfile", runfileText(2))
	add(t, a, "", "Runfile", runfileText(3))
	bare := bareRepo(t)
	res, err := a.Push(ctx, consumer.PushRequest{Remote: core.Remote{URL: bare}})
	if err != nil || res.Old != "" || res.UpToDate {
		t.Fatalf("push: %+v %v", res, err)
	}
	b, stB := newConsumer(t)
	pr, err := b.Pull(ctx, consumer.PullRequest{Remote: core.Remote{URL: "file://" + bare}})
	if err != nil || pr.Commits != 3 || len(pr.Indexed) != 3 || pr.Old != "" {
		t.Fatalf("pull into an empty store: %+v %v", pr, err)
	}
	rowsA, _ := stA.Commits(ctx, core.CommitFilter{})
	rowsB, _ := stB.Commits(ctx, core.CommitFilter{})
	if !reflect.DeepEqual(rowsA, rowsB) {
		t.Fatalf("index rows differ:\n%+v\n%+v", rowsA, rowsB)
	}
	for _, r := range rowsA {
		da, _, err := a.Cat(ctx, r.Hash+":"+r.Path)
		if err != nil {
			t.Fatal(err)
		}
		db, _, err := b.Cat(ctx, r.Hash+":"+r.Path)
		if err != nil || !bytes.Equal(da, db) {
			t.Fatalf("cat %s differs: %v", r.Hash, err)
		}
	}
	artA, _ := stA.Repo(ctx, core.DefaultRepo)
	artB, _ := stB.Repo(ctx, core.DefaultRepo)
	if artA.Head != artB.Head {
		t.Fatalf("heads %s %s", artA.Head, artB.Head)
	}
	for _, tb := range [][]byte{artA.Tarball, artB.Tarball} {
		if bytes.Contains(tb, []byte("[remote")) || bytes.Contains(tb, []byte(bare)) {
			t.Fatal("a tarball holds the remote")
		}
	}
	fsckClean(t, b)

	// Up to date, then a new commit in A travels on the next pull.
	if pr, err := b.Pull(ctx, consumer.PullRequest{Remote: core.Remote{URL: bare}}); err != nil || pr.Commits != 0 || pr.Head != artA.Head {
		t.Fatalf("pull again: %+v %v", pr, err)
	}
	c4 := add(t, a, "", "analysis/Runfile", runfileText(4))
	if res, err := a.Push(ctx, consumer.PushRequest{Remote: core.Remote{URL: bare}}); err != nil || res.Old != artA.Head {
		t.Fatalf("second push: %+v %v", res, err)
	}
	pr, err = b.Pull(ctx, consumer.PullRequest{Remote: core.Remote{URL: bare}})
	if err != nil || pr.Commits != 1 || len(pr.Indexed) != 1 || pr.Indexed[0] != c4 {
		t.Fatalf("incremental pull: %+v %v (want %+v)", pr, err, c4)
	}
	// B is now at the same head; a local add puts it ahead.
	add(t, b, "", "Runfile", runfileText(5))
	if pr, err := b.Pull(ctx, consumer.PullRequest{Remote: core.Remote{URL: bare}}); err != nil || pr.Ahead != 1 || pr.Commits != 0 {
		t.Fatalf("pull when ahead: %+v %v", pr, err)
	}
	fsckClean(t, a)
	fsckClean(t, b)
}

func TestPullGitCLICommits(t *testing.T) {
	ctx := context.Background()
	bare := bareRepo(t)
	work := workTree(t, bare)
	c1 := commitFiles(t, work, "first", map[string]string{
		"Runfile":             string(runfileText(1)),
		"README.md":           "not a Runfile\n",
		"jobs/train.Runfile":  string(runfileText(2)),
		"notes/Runfile.txt":   "also not one\n",
		"jobs/custom-name.rf": string(runfileText(3)),
	})
	coretest.Git(t, work, "push", "-q", "origin", "main")
	c, st := newConsumer(t)
	pr, err := c.Pull(ctx, consumer.PullRequest{Remote: core.Remote{URL: bare}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range pr.Indexed {
		got = append(got, r.Path)
		if r.Hash != c1 || r.Author != "Bob <bob@example.org>" || r.Message != "first\n" {
			t.Errorf("row %+v", r)
		}
	}
	// custom-name.rf by its content, the others by name.
	if strings.Join(got, " ") != "Runfile jobs/custom-name.rf jobs/train.Runfile" {
		t.Fatalf("indexed %v", got)
	}
	fsckClean(t, c)

	// A commit with an invalid Runfile refuses the pull, even with a valid
	// commit after it; nothing changes.
	before := repoState(t, st, core.DefaultRepo)
	bad := commitFiles(t, work, "bad", map[string]string{"jobs/train.Runfile": badRunfile})
	commitFiles(t, work, "fix", map[string]string{"jobs/train.Runfile": string(runfileText(4))})
	coretest.Git(t, work, "push", "-q", "origin", "main")
	_, err = c.Pull(ctx, consumer.PullRequest{Remote: core.Remote{URL: bare}})
	if !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "jobs/train.Runfile") {
		t.Fatalf("pull of an invalid Runfile: %v", err)
	}
	if after := repoState(t, st, core.DefaultRepo); after != before {
		t.Fatalf("refused pull changed the store: %s -> %s", before, after)
	}
	fsckClean(t, c)

	// A path the repo already indexes counts even if no glob names it,
	// and --path selects more.
	c2, _ := newConsumer(t)
	coretest.Git(t, work, "reset", "-q", "--hard", c1)
	coretest.Git(t, work, "push", "-q", "-f", "origin", "main")
	pr, err = c2.Pull(ctx, consumer.PullRequest{Remote: core.Remote{URL: bare}, Paths: []string{"*.rf"}})
	if err != nil || len(pr.Indexed) != 1 || pr.Indexed[0].Path != "jobs/custom-name.rf" {
		t.Fatalf("pull --path '*.rf': %+v %v", pr, err)
	}
	commitFiles(t, work, "edit", map[string]string{"jobs/custom-name.rf": string(runfileText(9)), "Runfile": string(runfileText(10))})
	coretest.Git(t, work, "push", "-q", "origin", "main")
	pr, err = c2.Pull(ctx, consumer.PullRequest{Remote: core.Remote{URL: bare}})
	if err != nil || len(pr.Indexed) != 2 {
		t.Fatalf("pull of an indexed path with the default globs: %+v %v", pr, err)
	}
	fsckClean(t, c2)
	if _, err := c2.Pull(ctx, consumer.PullRequest{Remote: core.Remote{URL: bare}, Paths: []string{"[x"}}); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("bad glob: %v", err)
	}
}

func TestPullDiverged(t *testing.T) {
	ctx := context.Background()
	bare := bareRepo(t)
	a, _ := newConsumer(t)
	add(t, a, "", "Runfile", runfileText(1))
	if _, err := a.Push(ctx, consumer.PushRequest{Remote: core.Remote{URL: bare}}); err != nil {
		t.Fatal(err)
	}
	b, stB := newConsumer(t)
	if _, err := b.Pull(ctx, consumer.PullRequest{Remote: core.Remote{URL: bare}}); err != nil {
		t.Fatal(err)
	}
	add(t, a, "", "Runfile", runfileText(2))
	if _, err := a.Push(ctx, consumer.PushRequest{Remote: core.Remote{URL: bare}}); err != nil {
		t.Fatal(err)
	}
	add(t, b, "", "Runfile", runfileText(3))
	before := repoState(t, stB, core.DefaultRepo)
	_, err := b.Pull(ctx, consumer.PullRequest{Remote: core.Remote{URL: bare}})
	if !errors.Is(err, core.ErrDiverged) {
		t.Fatalf("diverged pull: %v", err)
	}
	_, err = b.Push(ctx, consumer.PushRequest{Remote: core.Remote{URL: bare}})
	if !errors.Is(err, core.ErrNonFastForward) {
		t.Fatalf("non-fast-forward push: %v", err)
	}
	if after := repoState(t, stB, core.DefaultRepo); after != before {
		t.Fatalf("refused pull changed the store: %s -> %s", before, after)
	}
	fsckClean(t, b)
	// Pulling into another repo works.
	if pr, err := b.Pull(ctx, consumer.PullRequest{Repo: "upstream", Remote: core.Remote{URL: bare}}); err != nil || pr.Commits != 2 {
		t.Fatalf("pull into a new repo: %+v %v", pr, err)
	}
	if _, err := b.Push(ctx, consumer.PushRequest{Repo: "nope", Remote: core.Remote{URL: bare}}); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("push of a missing repo: %v", err)
	}
}

// racingStore runs hook before the first write, as another process would
// write between this pull's fetch and its transaction.
type racingStore struct {
	*sqlite.Store
	hook func()
}

func (s *racingStore) UpdateRepo(ctx context.Context, name string, fn func(context.Context, *core.RepoArtifact) (*core.RepoUpdate, error)) error {
	if h := s.hook; h != nil {
		s.hook = nil
		h()
	}
	return s.Store.UpdateRepo(ctx, name, fn)
}

func TestPullRechecksUnderTheLock(t *testing.T) {
	ctx := context.Background()
	bare := bareRepo(t)
	a, _ := newConsumer(t)
	add(t, a, "", "Runfile", runfileText(1))
	add(t, a, "", "Runfile", runfileText(2))
	if _, err := a.Push(ctx, consumer.PushRequest{Remote: core.Remote{URL: bare}}); err != nil {
		t.Fatal(err)
	}
	t.Run("same pull in between", func(t *testing.T) {
		b, st := newConsumer(t)
		other := *b
		racing := &racingStore{Store: st, hook: func() {
			if _, err := other.Pull(ctx, consumer.PullRequest{Remote: core.Remote{URL: bare}}); err != nil {
				t.Error(err)
			}
		}}
		b.Store = racing
		pr, err := b.Pull(ctx, consumer.PullRequest{Remote: core.Remote{URL: bare}})
		if err != nil || pr.Commits != 0 || pr.Old == "" {
			t.Fatalf("pull retried after a concurrent pull: %+v %v", pr, err)
		}
		if rows, _ := st.Commits(ctx, core.CommitFilter{}); len(rows) != 2 {
			t.Fatalf("%d rows, want 2", len(rows))
		}
		fsckClean(t, b)
	})
	t.Run("add in between", func(t *testing.T) {
		b, st := newConsumer(t)
		other := *b
		racing := &racingStore{Store: st, hook: func() { add(t, &other, "", "Runfile", runfileText(9)) }}
		b.Store = racing
		_, err := b.Pull(ctx, consumer.PullRequest{Remote: core.Remote{URL: bare}})
		if !errors.Is(err, core.ErrDiverged) {
			t.Fatalf("pull after a concurrent add: %v", err)
		}
		if rows, _ := st.Commits(ctx, core.CommitFilter{}); len(rows) != 1 {
			t.Fatalf("%d rows, want the 1 added", len(rows))
		}
		fsckClean(t, b)
	})
}
