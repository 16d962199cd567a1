package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/core/coretest"
)

// bareRepo makes an empty bare repository whose HEAD names main.
func bareRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "remote.git")
	coretest.Git(t, t.TempDir(), "init", "-q", "--bare", "-b", "main", dir)
	return dir
}

func remoteRepo(t *testing.T) *Repo {
	t.Helper()
	return openNew(t).(*Repo)
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// httpGitServer serves the bare repositories under root with git
// http-backend, requiring basic auth user:token; it returns the base URL.
func httpGitServer(t *testing.T, root, user, token string) string {
	t.Helper()
	const backend = "/usr/lib/git-core/git-http-backend"
	if _, err := os.Stat(backend); err != nil {
		coretest.Unavailable(t, backend+" is missing: install git")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		(&cgi.Handler{Path: backend, Root: "/git", Env: []string{
			"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "REMOTE_USER=" + u,
			"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		}}).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/git/"
}

func commitN(t *testing.T, r *Repo, files ...string) []string {
	t.Helper()
	var hashes []string
	for i, f := range files {
		info, err := r.CommitFile(context.Background(), f, []byte(strings.Repeat("x", i+1)+"\n"), "c "+f+"\n", alice)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, info.Hash)
	}
	return hashes
}

// checkNoRemoteTrace fails if the archive of r holds a remote, a fetch ref
// or any of secrets.
func checkNoRemoteTrace(t *testing.T, r *Repo, secrets ...string) {
	t.Helper()
	tarball, err := r.Archive(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append([]string{"[remote", "refs/runprov", "refs/remotes", "FETCH_HEAD"}, secrets...) {
		if bytes.Contains(tarball, []byte(s)) {
			t.Errorf("the tarball holds %q", s)
		}
	}
}

func TestPushFetchBareRepo(t *testing.T) {
	ctx := context.Background()
	for _, form := range []string{"path", "file-url"} {
		t.Run(form, func(t *testing.T) {
			bare := bareRepo(t)
			url := bare
			if form == "file-url" {
				url = "file://" + bare
			}
			a := remoteRepo(t)
			hashes := commitN(t, a, "Runfile", "a/b/Runfile", "a/b/Runfile")
			old, err := a.Push(ctx, core.Remote{URL: url}, "", false)
			if err != nil || old != "" {
				t.Fatalf("push: %q %v", old, err)
			}
			if got := coretest.Git(t, bare, "log", "--format=%H", "main"); got != strings.Join([]string{hashes[2], hashes[1], hashes[0]}, "\n") {
				t.Fatalf("git log in the bare repo:\n%s\nwant %v", got, hashes)
			}
			if old, err := a.Push(ctx, core.Remote{URL: url}, "", false); err != nil || old != hashes[2] {
				t.Fatalf("push again (up to date): %q %v", old, err)
			}
			checkNoRemoteTrace(t, a, bare)

			b := remoteRepo(t)
			got, ref, err := b.Fetch(ctx, core.Remote{URL: url}, "refs/heads/main")
			if err != nil || got != hashes[2] || ref != "refs/heads/main" {
				t.Fatalf("fetch: %s %s %v", got, ref, err)
			}
			if h, _ := b.Head(ctx); h != "" {
				t.Fatalf("fetch moved the branch to %s", h)
			}
			infos, err := b.NewCommits(ctx, "", got)
			if err != nil || len(infos) != 3 {
				t.Fatalf("new commits: %v %v", infos, err)
			}
			for i, info := range infos {
				if info.Hash != hashes[i] {
					t.Fatalf("new commit %d is %s, want %s", i, info.Hash, hashes[i])
				}
			}
			if more, err := b.NewCommits(ctx, hashes[1], got); err != nil || len(more) != 1 || more[0].Hash != hashes[2] {
				t.Fatalf("new commits since the 2nd: %v %v", more, err)
			}
			ch, err := b.Changes(ctx, hashes[0])
			if err != nil || len(ch) != 1 || ch[0].Path != "Runfile" {
				t.Fatalf("changes of the root commit: %v %v", ch, err)
			}
			ch, err = b.Changes(ctx, hashes[2])
			if err != nil || len(ch) != 1 || ch[0].Path != "a/b/Runfile" {
				t.Fatalf("changes of the 3rd commit: %v %v", ch, err)
			}
			if _, blob, _ := b.ReadFile(ctx, hashes[2], "a/b/Runfile"); blob != ch[0].Blob {
				t.Fatalf("change blob %s, file blob %s", ch[0].Blob, blob)
			}
			if err := b.SetHead(ctx, got); err != nil {
				t.Fatal(err)
			}
			if h, _ := b.Head(ctx); h != hashes[2] {
				t.Fatalf("head after SetHead: %s", h)
			}
			checkNoRemoteTrace(t, b, bare)
			// The archived repository is whole to the git CLI as well.
			tarball, _ := b.Archive(ctx)
			dir := t.TempDir()
			if err := restoreDir(tarball, dir); err != nil {
				t.Fatal(err)
			}
			coretest.Git(t, dir, "--git-dir", filepath.Join(dir, ".git"), "fsck", "--strict")
		})
	}
}

func TestPushNonFastForward(t *testing.T) {
	ctx := context.Background()
	bare := bareRepo(t)
	a := remoteRepo(t)
	ha := commitN(t, a, "Runfile")
	if _, err := a.Push(ctx, core.Remote{URL: bare}, "main", false); err != nil {
		t.Fatal(err)
	}
	b := remoteRepo(t)
	hb := commitN(t, b, "other/Runfile")
	_, err := b.Push(ctx, core.Remote{URL: bare}, "main", false)
	if !errors.Is(err, core.ErrNonFastForward) || !strings.Contains(err.Error(), "does not contain") {
		t.Fatalf("push of unrelated history: %v, want ErrNonFastForward", err)
	}
	if got := coretest.Git(t, bare, "rev-parse", "main"); got != ha[0] {
		t.Fatalf("refused push moved the remote to %s", got)
	}
	// A fast-forward from the remote's commit is accepted.
	more := commitN(t, a, "Runfile")
	if old, err := a.Push(ctx, core.Remote{URL: bare}, "main", false); err != nil || old != ha[0] {
		t.Fatalf("fast-forward push: %q %v", old, err)
	}
	if got := coretest.Git(t, bare, "rev-parse", "main"); got != more[0] {
		t.Fatalf("remote at %s after fast-forward, want %s", got, more[0])
	}
	if _, err := b.Push(ctx, core.Remote{URL: bare}, "main", true); err != nil {
		t.Fatalf("force push: %v", err)
	}
	if got := coretest.Git(t, bare, "rev-parse", "main"); got != hb[0] {
		t.Fatalf("remote at %s after force push, want %s", got, hb[0])
	}
	// Another branch name is another branch.
	if _, err := a.Push(ctx, core.Remote{URL: bare}, "laptop", false); err != nil {
		t.Fatal(err)
	}
	if got := coretest.Git(t, bare, "rev-parse", "laptop"); got != more[0] {
		t.Fatalf("branch laptop at %s", got)
	}
	if _, err := a.Push(ctx, core.Remote{URL: bare}, "bad..name", false); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("bad branch name: %v", err)
	}
}

func TestFetchRefsFromGitCLI(t *testing.T) {
	ctx := context.Background()
	work := t.TempDir()
	coretest.Git(t, work, "init", "-q")
	write := func(name, text string) {
		os.MkdirAll(filepath.Dir(filepath.Join(work, name)), 0o755)
		if err := os.WriteFile(filepath.Join(work, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Runfile", "one\n")
	write("README", "hello\n")
	coretest.Git(t, work, "add", ".")
	coretest.Git(t, work, "commit", "-q", "-m", "one")
	base := coretest.Git(t, work, "rev-parse", "HEAD")
	coretest.Git(t, work, "tag", "-a", "v1", "-m", "release")
	coretest.Git(t, work, "checkout", "-q", "-b", "side")
	write("side.Runfile", "side\n")
	write("Runfile", "changed on side\n")
	coretest.Git(t, work, "add", ".")
	coretest.Git(t, work, "commit", "-q", "-m", "side")
	side := coretest.Git(t, work, "rev-parse", "HEAD")
	coretest.Git(t, work, "checkout", "-q", "main")
	write("x/Runfile", "main\n")
	coretest.Git(t, work, "add", ".")
	coretest.Git(t, work, "commit", "-q", "-m", "main")
	mainC := coretest.Git(t, work, "rev-parse", "HEAD")
	coretest.Git(t, work, "merge", "-q", "--no-edit", "side")
	// Resolve Runfile differently from both parents: only it and nothing
	// else is what the merge itself changes.
	write("Runfile", "resolved\n")
	coretest.Git(t, work, "commit", "-q", "-a", "--amend", "--no-edit")
	merge := coretest.Git(t, work, "rev-parse", "HEAD")
	bare := bareRepo(t)
	coretest.Git(t, work, "push", "-q", bare, "main", "side", "v1")

	r := remoteRepo(t)
	for _, tc := range []struct{ ref, want, name string }{
		{"", merge, "refs/heads/main"},
		{"side", side, "refs/heads/side"},
		{"v1", base, "refs/tags/v1"},
		{"refs/heads/main", merge, "refs/heads/main"},
	} {
		got, name, err := r.Fetch(ctx, core.Remote{URL: bare}, tc.ref)
		if err != nil || got != tc.want || name != tc.name {
			t.Errorf("fetch %q: %s %s %v, want %s %s", tc.ref, got, name, err, tc.want, tc.name)
		}
	}
	if _, _, err := r.Fetch(ctx, core.Remote{URL: bare}, "nope"); !errors.Is(err, core.ErrNotFound) || !strings.Contains(err.Error(), "side") {
		t.Errorf("fetch of a missing ref: %v", err)
	}
	if _, _, err := r.Fetch(ctx, core.Remote{URL: bareRepo(t)}, ""); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("fetch from an empty remote: %v", err)
	}
	if _, _, err := r.Fetch(ctx, core.Remote{URL: filepath.Join(t.TempDir(), "missing.git")}, ""); err == nil {
		t.Errorf("fetch from a missing path succeeded")
	}

	infos, err := r.NewCommits(ctx, "", merge)
	if err != nil || len(infos) != 4 {
		t.Fatalf("new commits: %d %v", len(infos), err)
	}
	pos := map[string]int{}
	for i, c := range infos {
		pos[c.Hash] = i
	}
	if !(pos[base] < pos[side] && pos[base] < pos[mainC] && pos[side] < pos[merge] && pos[mainC] < pos[merge]) {
		t.Fatalf("commits not in parent-first order: %v", pos)
	}
	ch, err := r.Changes(ctx, merge)
	if err != nil || len(ch) != 1 || ch[0].Path != "Runfile" {
		t.Fatalf("changes of the merge: %v %v", ch, err)
	}
	ch, err = r.Changes(ctx, base)
	if err != nil || len(ch) != 2 || ch[0].Path != "README" || ch[1].Path != "Runfile" {
		t.Fatalf("changes of the root: %v %v", ch, err)
	}
	if err := r.SetHead(ctx, merge); err != nil {
		t.Fatal(err)
	}
	checkNoRemoteTrace(t, r, bare)
}

func TestHTTPRemoteAuth(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	coretest.Git(t, root, "init", "-q", "--bare", "-b", "main", "r.git")
	const token = "s3cr3t-token-8c1f"
	url := httpGitServer(t, root, "alice", token) + "r.git"

	a := remoteRepo(t)
	hashes := commitN(t, a, "Runfile", "Runfile")
	t.Setenv(EnvUser, "alice")
	t.Setenv(EnvToken, token)
	if _, err := a.Push(ctx, core.Remote{URL: url}, "", false); err != nil {
		t.Fatalf("push over HTTP: %v", err)
	}
	if got := coretest.Git(t, filepath.Join(root, "r.git"), "rev-parse", "main"); got != hashes[1] {
		t.Fatalf("remote main %s, want %s", got, hashes[1])
	}
	b := remoteRepo(t)
	got, _, err := b.Fetch(ctx, core.Remote{URL: url}, "main")
	if err != nil || got != hashes[1] {
		t.Fatalf("fetch over HTTP: %s %v", got, err)
	}
	checkNoRemoteTrace(t, b, url, token, "127.0.0.1")

	t.Run("wrong token", func(t *testing.T) {
		t.Setenv(EnvToken, "wrong-token-77")
		_, _, err := remoteRepo(t).Fetch(ctx, core.Remote{URL: url}, "main")
		if err == nil || !strings.Contains(err.Error(), "refused the credentials") || strings.Contains(err.Error(), "wrong-token-77") {
			t.Fatalf("fetch with a wrong token: %v", err)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		t.Setenv(EnvToken, "")
		t.Setenv("NETRC", filepath.Join(t.TempDir(), "none"))
		_, err := a.Push(ctx, core.Remote{URL: url}, "", false)
		if err == nil || !strings.Contains(err.Error(), EnvToken) {
			t.Fatalf("push without credentials: %v", err)
		}
	})
	t.Run("netrc", func(t *testing.T) {
		t.Setenv(EnvToken, "")
		netrc := filepath.Join(t.TempDir(), "netrc")
		os.WriteFile(netrc, []byte("machine example.org login x password y\nmachine 127.0.0.1\n  login alice\n  password "+token+"\n"), 0o600)
		t.Setenv("NETRC", netrc)
		if _, _, err := remoteRepo(t).Fetch(ctx, core.Remote{URL: url}, "main"); err != nil {
			t.Fatalf("fetch with netrc: %v", err)
		}
	})
	t.Run("token in URL", func(t *testing.T) {
		t.Setenv(EnvToken, "")
		withCreds := strings.Replace(url, "http://", "http://alice:"+token+"@", 1)
		if _, _, err := remoteRepo(t).Fetch(ctx, core.Remote{URL: withCreds}, "main"); err != nil {
			t.Fatalf("fetch with user:token in the URL: %v", err)
		}
		bad := strings.Replace(url, "http://", "http://alice:not-"+token+"@", 1)
		_, _, err := remoteRepo(t).Fetch(ctx, core.Remote{URL: bad}, "main")
		if err == nil || strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "alice:") {
			t.Fatalf("error leaks the URL's credentials: %v", err)
		}
	})
}

func TestUnreachableRemoteScrubbed(t *testing.T) {
	ctx := context.Background()
	t.Setenv(EnvToken, "tok-do-not-print")
	url := "https://bob:pw-do-not-print@" + closedPort(t) + "/r.git?private_token=q-do-not-print"
	_, _, err := remoteRepo(t).Fetch(ctx, core.Remote{URL: url}, "")
	if err == nil {
		t.Fatal("fetch from a closed port succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "cannot reach") {
		t.Errorf("unclear error: %s", msg)
	}
	for _, s := range []string{"do-not-print", "bob"} {
		if strings.Contains(msg, s) {
			t.Errorf("error leaks %q: %s", s, msg)
		}
	}
	if _, err := remoteRepo(t).Push(ctx, core.Remote{URL: "ftp://x/y"}, "", false); !errors.Is(err, core.ErrInvalid) && !errors.Is(err, core.ErrNotFound) {
		t.Errorf("unsupported scheme: %v", err)
	}
	if _, _, err := remoteRepo(t).Fetch(ctx, core.Remote{URL: "/x", SSHKey: "/k"}, ""); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("--ssh-key with a path: %v", err)
	}
	if _, _, err := remoteRepo(t).Fetch(ctx, core.Remote{URL: "ssh://git@" + closedPort(t) + "/r.git", SSHKey: filepath.Join(t.TempDir(), "missing")}, ""); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("missing ssh key: %v", err)
	}
}

func TestParseNetrc(t *testing.T) {
	const text = `machine a.example login la password pa
default login ld password pd
machine b.example
	login lb
	password pb
macdef init
	cd /tmp

machine c.example login lc
`
	for _, tc := range []struct {
		host, login, pass string
		ok                bool
	}{
		{"a.example", "la", "pa", true},
		{"b.example", "lb", "pb", true}, // after a default and across lines
		// c.example has its own entry, without a password. As in curl, a
		// machine's entry overrides default: the default's password is
		// never sent to a host that has an entry, so there are no
		// credentials (and the remote's refusal says to set a token).
		{"c.example", "", "", false},
		{"zzz", "ld", "pd", true},  // no entry: the default
		{"init", "ld", "pd", true}, // a macro's name is not a machine
		{"cd", "ld", "pd", true},   // nor a word of its body
	} {
		l, p, ok := parseNetrc(text, tc.host)
		if ok != tc.ok || l != tc.login || p != tc.pass {
			t.Errorf("%s: %q %q %v, want %q %q %v", tc.host, l, p, ok, tc.login, tc.pass, tc.ok)
		}
	}
	// The first entry for a host wins; a later one for the same host does
	// not fill in what the first lacks.
	for _, tc := range []struct{ text, login, pass string }{
		{"machine h login one password p1\nmachine h login two password p2", "one", "p1"},
		{"machine h login one\nmachine h login two password p2\ndefault login d password pd", "", ""},
		{"default login d password pd\nmachine h login one password p1", "one", "p1"},
	} {
		l, p, ok := parseNetrc(tc.text, "h")
		if l != tc.login || p != tc.pass || ok != (tc.pass != "") {
			t.Errorf("%q: %q %q %v, want %q %q", tc.text, l, p, ok, tc.login, tc.pass)
		}
	}
	if _, _, ok := parseNetrc("machine a login x password y", "b"); ok {
		t.Error("no entry and no default must give nothing")
	}
}

// TestRepeatedPullsBoundPacks: each fetch leaves a pack, merged geometrically
// with the others, so the tarball stays a handful of files.
func TestRepeatedPullsBoundPacks(t *testing.T) {
	const maxPacks = 8 // geometric merging keeps ~log2(objects) packs
	ctx := context.Background()
	bare := bareRepo(t)
	a := remoteRepo(t)
	var tarball []byte
	var all []string
	for i := range 2*maxPacks + 3 {
		all = append(all, commitN(t, a, fmt.Sprintf("d%d/Runfile", i))...)
		if _, err := a.Push(ctx, core.Remote{URL: bare}, "", false); err != nil {
			t.Fatal(err)
		}
		r, err := Opener{}.OpenRepo(ctx, t.TempDir(), tarball)
		if err != nil {
			t.Fatal(err)
		}
		b := r.(*Repo)
		h, _, err := b.Fetch(ctx, core.Remote{URL: bare}, "main")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.SetHead(ctx, h); err != nil {
			t.Fatal(err)
		}
		packs, _ := b.st.ObjectPacks()
		if len(packs) > maxPacks {
			t.Fatalf("pull %d left %d packs", i, len(packs))
		}
		if tarball, err = b.Archive(ctx); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	dir := t.TempDir()
	if err := restoreDir(tarball, dir); err != nil {
		t.Fatal(err)
	}
	if got := coretest.Git(t, dir, "--git-dir", filepath.Join(dir, ".git"), "rev-list", "--count", "main"); got != fmt.Sprint(len(all)) {
		t.Fatalf("%s commits after the pulls, want %d", got, len(all))
	}
	coretest.Git(t, dir, "--git-dir", filepath.Join(dir, ".git"), "fsck", "--strict")
}
