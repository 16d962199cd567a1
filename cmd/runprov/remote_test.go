package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runprov/runprov/core/coretest"
)

// remoteBare makes an empty bare repository dir/name whose HEAD is main.
func remoteBare(t *testing.T, dir, name string) string {
	t.Helper()
	coretest.Git(t, dir, "init", "-q", "--bare", "-b", "main", name)
	return filepath.Join(dir, name)
}

// remoteHTTPServer serves the bare repositories under root with git
// http-backend behind HTTP basic auth; it returns the base URL.
func remoteHTTPServer(t *testing.T, root, user, token string) string {
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

func remoteRunfile(i int) string {
	return fmt.Sprintf("FROM docker.io/library/busybox@sha256:%064x\nLABEL revision=%d\nCMD [\"/bin/true\"]\n", 5, i)
}

// addRunfiles commits Runfiles to store with runprov add and returns their hashes.
func addRunfiles(t *testing.T, store string, paths ...string) []string {
	t.Helper()
	var hashes []string
	for i, p := range paths {
		f := filepath.Join(t.TempDir(), "Runfile")
		if err := os.WriteFile(f, []byte(remoteRunfile(i+len(p))), 0o644); err != nil {
			t.Fatal(err)
		}
		out, _ := mustCLI(t, 0, store, "add", "--path", p, "-m", "add "+p, f)
		hashes = append(hashes, strings.TrimSpace(out))
	}
	return hashes
}

// storeState is what must not change when a remote operation fails: the
// repos rows (head, tarball sha256) and the commit index.
func storeState(t *testing.T, store string) string {
	t.Helper()
	out, _ := mustCLI(t, 0, store, "--json", "query",
		"SELECT name, head, tarball_sha256, (SELECT group_concat(hash || ' ' || path, ',') FROM commits) AS idx FROM repos ORDER BY name")
	return out
}

func fsckHolds(t *testing.T, store string) {
	t.Helper()
	mustCLI(t, 0, store, "fsck")
}

// sameLogAndCat checks that two stores show the same commits byte for byte.
func sameLogAndCat(t *testing.T, a, b string, hashes []string) {
	t.Helper()
	for _, args := range [][]string{{"log"}, {"--json", "log"}, {"--csv", "log"}} {
		la, _ := mustCLI(t, 0, a, args...)
		lb, _ := mustCLI(t, 0, b, args...)
		if la != lb {
			t.Fatalf("runprov %v differs:\n%s\n---\n%s", args, la, lb)
		}
	}
	for _, h := range hashes {
		ca, _ := mustCLI(t, 0, a, "cat", h)
		cb, _ := mustCLI(t, 0, b, "cat", h)
		if ca != cb || ca == "" {
			t.Fatalf("cat %s differs:\n%s\n---\n%s", h, ca, cb)
		}
	}
}

// grepStore fails if the store dir holds one of needles anywhere: in any
// file under dir, in any value of any table read through SQL (SQLite may
// split a blob over overflow pages, so the raw file alone can miss one), or
// in any file of any repository's container_run_commands tarball.
func grepStore(t *testing.T, dir string, needles ...string) {
	t.Helper()
	for _, f := range storeFindings(t, dir, needles...) {
		t.Error(f)
	}
}

// storeFindings lists where the store dir holds each of needles, as
// grepStore searches.
func storeFindings(t *testing.T, dir string, needles ...string) []string {
	t.Helper()
	var found []string
	check := func(where string, data []byte) {
		for _, n := range needles {
			if bytes.Contains(data, []byte(n)) {
				found = append(found, fmt.Sprintf("%s holds %q", where, n))
			}
		}
	}
	files := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		check(p, data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatalf("no files under %s", dir)
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "runprov.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables []string
	rows, err := db.Query("SELECT name FROM sqlite_schema WHERE type = 'table'")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for n := 0; rows.Next(); n++ {
			vals := make([]sql.RawBytes, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				check(fmt.Sprintf("table %s row %d column %s", table, n, cols[i]), v)
			}
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}

	tarballs, err := db.Query("SELECT name, container_run_commands FROM repos")
	if err != nil {
		t.Fatal(err)
	}
	defer tarballs.Close()
	repos := 0
	for tarballs.Next() {
		var (
			name string
			blob []byte
		)
		if err := tarballs.Scan(&name, &blob); err != nil {
			t.Fatal(err)
		}
		repos++
		entries := coretest.TarEntries(t, blob, func(entry string, data []byte) {
			check(fmt.Sprintf("repo %s tarball entry name %s", name, entry), []byte(entry))
			check(fmt.Sprintf("repo %s tarball file %s", name, entry), data)
		})
		if entries == 0 {
			t.Fatalf("repo %s: empty tarball", name)
		}
	}
	if err := tarballs.Err(); err != nil {
		t.Fatal(err)
	}
	if repos == 0 {
		t.Fatalf("store %s has no repositories to search", dir)
	}
	return found
}

// TestGrepStoreSearchesEverything: the search that the remote tests rely on
// finds a needle in a file inside a stored tarball and in a large value
// that SQLite keeps on overflow pages.
func TestGrepStoreSearchesEverything(t *testing.T) {
	store := newCLIStore(t)
	f := filepath.Join(t.TempDir(), "Runfile")
	if err := os.WriteFile(f, []byte(remoteRunfile(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	// A message many pages long with the needle at its end: in the .db
	// file it is split over overflow pages.
	msg := strings.Repeat("filler text ", 4000) + "needle-in-the-message-5150"
	mustCLI(t, 0, store, "add", "-m", msg, f)
	found := strings.Join(storeFindings(t, store, "[core]", "needle-in-the-message-5150", "never-stored-0000"), "\n")
	for _, w := range []string{
		`tarball file .git/config holds "[core]"`,
		`table commits row 0 column message holds "needle-in-the-message-5150"`,
	} {
		if !strings.Contains(found, w) {
			t.Errorf("the search missed %s; it found:\n%s", w, found)
		}
	}
	if strings.Contains(found, "never-stored-0000") {
		t.Errorf("the search found what was never stored:\n%s", found)
	}
}

func TestRemoteCLIRoundTripBareRepo(t *testing.T) {
	a, b := newCLIStore(t), newCLIStore(t)
	bare := remoteBare(t, t.TempDir(), "shared.git")
	hashes := addRunfiles(t, a, "Runfile", "analysis/Runfile", "Runfile")
	out, _ := mustCLI(t, 0, a, "push", bare)
	if strings.TrimSpace(out) != hashes[2] {
		t.Fatalf("push printed %q, want the head %s", out, hashes[2])
	}
	if got := coretest.Git(t, bare, "log", "--format=%H %s", "main"); got != fmt.Sprintf("%s add Runfile\n%s add analysis/Runfile\n%s add Runfile", hashes[2], hashes[1], hashes[0]) {
		t.Fatalf("git log in the bare repo:\n%s", got)
	}
	out, _ = mustCLI(t, 0, b, "pull", "file://"+bare)
	if strings.TrimSpace(out) != hashes[2] {
		t.Fatalf("pull printed %q, want %s", out, hashes[2])
	}
	sameLogAndCat(t, a, b, hashes)
	fsckHolds(t, b)
	// Up to date both ways.
	mustCLI(t, 0, a, "push", bare)
	_, errs := mustCLI(t, 0, b, "pull", bare)
	if !strings.Contains(errs, "up to date") {
		t.Errorf("second pull said: %s", errs)
	}
	grepStore(t, a, bare)
	grepStore(t, b, bare, "[remote")
}

func TestRemoteCLIRoundTripHTTP(t *testing.T) {
	root := t.TempDir()
	remoteBare(t, root, "r.git")
	const token = "tok-9f8e7d6c5b4a-http"
	base := remoteHTTPServer(t, root, "carol", token)
	url := base + "r.git"
	hostPort := strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/git/")
	t.Setenv("RUNPROV_GIT_USER", "carol")
	t.Setenv("RUNPROV_GIT_TOKEN", token)
	t.Setenv("NETRC", filepath.Join(t.TempDir(), "no-netrc"))

	a, b := newCLIStore(t), newCLIStore(t)
	hashes := addRunfiles(t, a, "Runfile", "jobs/train.Runfile")
	mustCLI(t, 0, a, "push", url)
	if got := coretest.Git(t, filepath.Join(root, "r.git"), "rev-parse", "main"); got != hashes[1] {
		t.Fatalf("remote main %s, want %s", got, hashes[1])
	}
	mustCLI(t, 0, b, "pull", url)
	sameLogAndCat(t, a, b, hashes)
	fsckHolds(t, b)

	// Wrong credentials: a clear error, exit 125, nothing changed.
	hashes = append(hashes, addRunfiles(t, a, "Runfile")...)
	mustCLI(t, 0, a, "push", url)
	before := storeState(t, b)
	t.Setenv("RUNPROV_GIT_TOKEN", "not-the-token-31337")
	_, errs := mustCLI(t, 125, b, "pull", url)
	if !strings.Contains(errs, "refused the credentials") || strings.Contains(errs, "not-the-token-31337") {
		t.Fatalf("pull with a wrong token said:\n%s", errs)
	}
	_, errs = mustCLI(t, 125, b, "pull", strings.Replace(url, "http://", "http://carol:url-secret-4242@", 1))
	if strings.Contains(errs, "url-secret-4242") {
		t.Fatalf("error leaks the URL's password:\n%s", errs)
	}
	if after := storeState(t, b); after != before {
		t.Fatalf("failed pull changed the store:\n%s\n%s", before, after)
	}
	fsckHolds(t, b)
	t.Setenv("RUNPROV_GIT_TOKEN", token)
	mustCLI(t, 0, b, "pull", url)
	sameLogAndCat(t, a, b, hashes)
	fsckHolds(t, b)

	// Nothing of the URL or the token anywhere in either store: the
	// database, its WAL, the temp directory.
	for _, s := range []string{a, b} {
		grepStore(t, s, url, token, hostPort, "url-secret-4242", "not-the-token-31337", "[remote")
	}
}

func TestRemoteCLIGitPushedRunfile(t *testing.T) {
	store := newCLIStore(t)
	bare := remoteBare(t, t.TempDir(), "r.git")
	work := filepath.Join(t.TempDir(), "work")
	coretest.Git(t, t.TempDir(), "clone", "-q", bare, work)
	coretest.Git(t, work, "checkout", "-q", "-B", "main")
	os.MkdirAll(filepath.Join(work, "analysis"), 0o755)
	text := remoteRunfile(42)
	os.WriteFile(filepath.Join(work, "analysis", "Runfile"), []byte(text), 0o644)
	os.WriteFile(filepath.Join(work, "README.md"), []byte("# notes\n"), 0o644)
	coretest.Git(t, work, "add", ".")
	coretest.Git(t, work, "commit", "-q", "-m", "Add the analysis Runfile")
	coretest.Git(t, work, "push", "-q", "origin", "main")
	hash := coretest.Git(t, work, "rev-parse", "HEAD")

	mustCLI(t, 0, store, "pull", bare)
	out, _ := mustCLI(t, 0, store, "--csv", "log")
	if !strings.Contains(out, hash+",default,analysis/Runfile,") || !strings.Contains(out, "Bob <bob@example.org>") || strings.Contains(out, "README") {
		t.Fatalf("log after pulling a git CLI commit:\n%s", out)
	}
	if got, _ := mustCLI(t, 0, store, "cat", hash[:10]); got != text {
		t.Fatalf("cat: %q", got)
	}
	fsckHolds(t, store)
}

func TestRemoteCLIFailuresChangeNothing(t *testing.T) {
	root := t.TempDir()
	bare := remoteBare(t, root, "r.git")
	const token = "tok-push-0f1e2d3c"
	httpURL := remoteHTTPServer(t, root, "erin", token) + "fresh.git"
	t.Setenv("NETRC", filepath.Join(t.TempDir(), "no-netrc"))
	t.Setenv("RUNPROV_GIT_USER", "erin")
	t.Setenv("RUNPROV_GIT_TOKEN", "")
	a, b, c := newCLIStore(t), newCLIStore(t), newCLIStore(t)
	addRunfiles(t, a, "Runfile")
	mustCLI(t, 0, a, "push", bare)
	mustCLI(t, 0, b, "pull", bare)
	addRunfiles(t, a, "a.Runfile")
	mustCLI(t, 0, a, "push", bare)
	addRunfiles(t, b, "b.Runfile") // b has diverged from the remote

	work := filepath.Join(t.TempDir(), "work")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://u:pw-zz-secret@" + ln.Addr().String() + "/r.git"
	ln.Close()

	// c pushes over HTTP to its own empty repository: with the right
	// token that push goes through (checked after the failures).
	fresh := remoteBare(t, root, "fresh.git")
	addRunfiles(t, c, "c.Runfile")
	cStore := func() string { return c }
	remoteRefs := func() string {
		return coretest.Git(t, bare, "for-each-ref") + "\n" + coretest.Git(t, fresh, "for-each-ref")
	}

	for _, tc := range []struct {
		name  string
		setup func() string // returns the store to act on
		args  []string
		want  []string
		env   map[string]string
	}{
		{"non-fast-forward push", func() string { return b }, []string{"push", bare}, []string{"non-fast-forward", "hint: pull first"}, nil},
		{"diverged pull", func() string { return b }, []string{"pull", bare}, []string{"diverged", "hint: the histories diverged"}, nil},
		{"unreachable remote", func() string { return b }, []string{"pull", closed}, []string{"cannot reach", "127.0.0.1"}, nil},
		{"unreachable remote, push", func() string { return b }, []string{"push", closed}, []string{"cannot reach"}, nil},
		{"missing repository", func() string { return b }, []string{"pull", filepath.Join(t.TempDir(), "none.git")}, []string{"none.git"}, nil},
		{"missing branch", func() string { return b }, []string{"pull", bare, "--branch", "nope"}, []string{"no branch or tag", "main"}, nil},
		{"invalid Runfile", func() string {
			coretest.Git(t, t.TempDir(), "clone", "-q", bare, work)
			os.WriteFile(filepath.Join(work, "Runfile"), []byte("FROM busybox\nEXPOSE 80\n"), 0o644)
			coretest.Git(t, work, "commit", "-q", "-a", "-m", "bad")
			coretest.Git(t, work, "push", "-q", "origin", "HEAD:main")
			return a
		}, []string{"pull", bare}, []string{"invalid Runfile Runfile", "nothing was changed"}, nil},
		{"wrong token, push", cStore, []string{"push", httpURL}, []string{"refused the credentials", "RUNPROV_GIT_TOKEN"},
			map[string]string{"RUNPROV_GIT_TOKEN": "not-the-token-pw-zz-secret"}},
		{"wrong password in the URL, push", cStore, []string{"push", strings.Replace(httpURL, "http://", "http://erin:pw-zz-secret@", 1)}, []string{"refused the credentials", "the URL"}, nil},
		{"no credentials, push", cStore, []string{"push", httpURL}, []string{"asks for credentials", "RUNPROV_GIT_TOKEN"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			store := tc.setup()
			before := storeState(t, store)
			remoteBefore := remoteRefs()
			_, errs := mustCLI(t, 125, store, tc.args...)
			want := tc.want
			if tc.name == "invalid Runfile" {
				want = append(want, coretest.Git(t, work, "rev-parse", "HEAD"))
			}
			for _, w := range want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
			if strings.Contains(errs, "pw-zz-secret") {
				t.Errorf("stderr leaks the password:\n%s", errs)
			}
			if after := storeState(t, store); after != before {
				t.Errorf("the store changed:\n%s\n%s", before, after)
			}
			if after := remoteRefs(); after != remoteBefore {
				t.Errorf("the remote changed:\n%s\n%s", remoteBefore, after)
			}
			fsckHolds(t, store)
		})
	}
	// With the right token the same push goes through: the refusals above
	// were the credentials' doing.
	t.Setenv("RUNPROV_GIT_TOKEN", token)
	out, _ := mustCLI(t, 0, c, "push", httpURL)
	if got := coretest.Git(t, fresh, "rev-parse", "main"); got != strings.TrimSpace(out) {
		t.Fatalf("remote main %s after the push, want c's head %s", got, out)
	}
	grepStore(t, c, httpURL, token, "pw-zz-secret", "[remote")
	t.Setenv("RUNPROV_GIT_TOKEN", "")
	// --force overwrites the remote branch.
	mustCLI(t, 0, b, "push", "--force", bare)
	head, _ := mustCLI(t, 0, b, "log", "-n", "1", "--json")
	if !strings.Contains(head, coretest.Git(t, bare, "rev-parse", "main")) {
		t.Fatalf("remote main is not b's head after --force")
	}
}

func TestRemoteCLIAddFrom(t *testing.T) {
	root := t.TempDir()
	bare := remoteBare(t, root, "r.git")
	work := filepath.Join(t.TempDir(), "work")
	coretest.Git(t, t.TempDir(), "clone", "-q", bare, work)
	coretest.Git(t, work, "checkout", "-q", "-B", "main")
	os.MkdirAll(filepath.Join(work, "jobs"), 0o755)
	os.WriteFile(filepath.Join(work, "jobs", "a.Runfile"), []byte(remoteRunfile(1)), 0o644)
	os.WriteFile(filepath.Join(work, "jobs", "b.rf"), []byte(remoteRunfile(2)), 0o644)
	coretest.Git(t, work, "add", ".")
	coretest.Git(t, work, "commit", "-q", "-m", "jobs")
	coretest.Git(t, work, "tag", "v1")
	coretest.Git(t, work, "push", "-q", "origin", "main", "v1")
	hash := coretest.Git(t, work, "rev-parse", "HEAD")

	store := newCLIStore(t)
	out, _ := mustCLI(t, 0, store, "add", "--from", bare, "--ref", "v1", "--path", "*.rf", "--path", "*.Runfile", "--repo", "jobs")
	if strings.TrimSpace(out) != hash {
		t.Fatalf("add --from printed %q", out)
	}
	out, _ = mustCLI(t, 0, store, "--csv", "log", "--repo", "jobs")
	if !strings.Contains(out, "jobs/a.Runfile") || !strings.Contains(out, "jobs/b.rf") {
		t.Fatalf("log after add --from:\n%s", out)
	}
	// That commit records two Runfiles: cat needs the path.
	_, errs := mustCLI(t, 125, store, "cat", hash[:10])
	if !strings.Contains(errs, "several Runfiles") || !strings.Contains(errs, "jobs/a.Runfile, jobs/b.rf") || !strings.Contains(errs, hash[:10]+":PATH") {
		t.Fatalf("cat of a commit with two Runfiles said:\n%s", errs)
	}
	if got, _ := mustCLI(t, 0, store, "cat", hash[:10]+":jobs/b.rf"); got != remoteRunfile(2) {
		t.Fatalf("cat %s:jobs/b.rf = %q", hash[:10], got)
	}
	// The repo shares the remote's history: pull fast-forwards it.
	os.WriteFile(filepath.Join(work, "jobs", "b.rf"), []byte(remoteRunfile(3)), 0o644)
	coretest.Git(t, work, "commit", "-q", "-a", "-m", "update b")
	coretest.Git(t, work, "push", "-q", "origin", "main")
	out, _ = mustCLI(t, 0, store, "--json", "pull", bare, "--repo", "jobs")
	if !strings.Contains(out, `"path": "jobs/b.rf"`) {
		t.Fatalf("pull after add --from: %s", out)
	}
	fsckHolds(t, store)
	// add --from keeps no remote: no [remote section, remote-tracking ref
	// or FETCH_HEAD, and not the URL, in the tarball or anywhere else.
	grepStore(t, store, bare, "[remote", "refs/remotes", "FETCH_HEAD", "[branch")

	// Over HTTP with credentials from the environment and from the URL:
	// neither the token, the URL nor the host is kept.
	const token = "tok-addfrom-6a5b4c3d"
	base := remoteHTTPServer(t, root, "dave", token)
	url := base + "r.git"
	hostPort := strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/git/")
	t.Setenv("NETRC", filepath.Join(t.TempDir(), "no-netrc"))
	t.Setenv("RUNPROV_GIT_USER", "dave")
	t.Setenv("RUNPROV_GIT_TOKEN", token)
	head := coretest.Git(t, work, "rev-parse", "HEAD")
	out, _ = mustCLI(t, 0, store, "add", "--from", url, "--path", "*.rf", "--path", "*.Runfile", "--repo", "env-token")
	if strings.TrimSpace(out) != head {
		t.Fatalf("add --from over HTTP printed %q, want %s", out, head)
	}
	t.Setenv("RUNPROV_GIT_TOKEN", "")
	out, _ = mustCLI(t, 0, store, "add", "--from", strings.Replace(url, "http://", "http://dave:"+token+"@", 1), "--path", "*.rf", "--path", "*.Runfile", "--repo", "url-token")
	if strings.TrimSpace(out) != head {
		t.Fatalf("add --from a URL with a password printed %q, want %s", out, head)
	}
	fsckHolds(t, store)
	grepStore(t, store, bare, url, token, hostPort, "[remote", "refs/remotes", "FETCH_HEAD", "[branch")

	for _, args := range [][]string{
		{"add"},
		{"add", "Runfile", "--from", bare},
		{"add", "--from", bare, "-m", "msg"},
		{"add", "Runfile", "--ref", "v1"},
		{"push"},
		{"pull"},
	} {
		mustCLI(t, 2, store, args...)
	}
}
