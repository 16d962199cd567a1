package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/runprov/runprov/core/coretest"
)

var commitHash = regexp.MustCompile(`^[0-9a-f]{40}\n$`)

const exampleRunfile = "../../examples/csv-summary/Runfile"

// TestAddLogCatQuery is the foundation's main path: add prints a commit, log
// lists it, cat returns the bytes, query finds it, and the stored tarball is
// a .git the git CLI opens and that holds the commit.
func TestAddLogCatQuery(t *testing.T) {
	store := t.TempDir()
	mustCLI(t, 0, store, "init")
	out, _ := mustCLI(t, 0, store, "add", "-m", "first analysis", exampleRunfile)
	if !commitHash.MatchString(out) {
		t.Fatalf("add printed %q, want a 40-hex commit", out)
	}
	hash := strings.TrimSpace(out)

	logOut, _ := mustCLI(t, 0, store, "--json", "log")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(logOut), &rows); err != nil {
		t.Fatalf("log --json: %v\n%s", err, logOut)
	}
	if len(rows) != 1 || rows[0]["commit"] != hash || rows[0]["path"] != "Runfile" || rows[0]["repo"] != "default" {
		t.Fatalf("log --json = %v, want the one commit %s", rows, hash)
	}
	text, _ := mustCLI(t, 0, store, "log")
	if !strings.Contains(text, hash[:12]) || !strings.Contains(text, "first analysis") {
		t.Fatalf("log does not show the commit:\n%s", text)
	}

	want, err := os.ReadFile(exampleRunfile)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{hash, hash[:7], hash[:7] + ":Runfile"} {
		got, _ := mustCLI(t, 0, store, "cat", name)
		if got != string(want) {
			t.Fatalf("cat %s differs from the file:\n%q\nwant\n%q", name, got, want)
		}
	}

	q, _ := mustCLI(t, 0, store, "--json", "query", "SELECT hash, path, image_digest FROM commits WHERE path = 'Runfile'")
	var qrows []map[string]any
	if err := json.Unmarshal([]byte(q), &qrows); err != nil {
		t.Fatal(err)
	}
	if len(qrows) != 1 || qrows[0]["hash"] != hash || !strings.HasPrefix(qrows[0]["image_digest"].(string), "sha256:") {
		t.Fatalf("query = %v", qrows)
	}
	csvOut, _ := mustCLI(t, 0, store, "--csv", "query", "SELECT hash FROM commits")
	if csvOut != "hash\n"+hash+"\n" {
		t.Fatalf("query --csv = %q", csvOut)
	}

	// The middleware column: a tar of .git that the git CLI reads.
	gitBin := coretest.RequireBinary(t, "git")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(store, "runprov.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var (
		blob   []byte
		sum    string
		size   int64
		headDB string
	)
	if err := db.QueryRow("SELECT container_run_commands, tarball_sha256, tarball_size, head FROM repos WHERE name = 'default'").Scan(&blob, &sum, &size, &headDB); err != nil {
		t.Fatal(err)
	}
	got := sha256.Sum256(blob)
	if hex.EncodeToString(got[:]) != sum || int64(len(blob)) != size || headDB != hash {
		t.Fatalf("repos row: sha256 %s size %d head %s; tarball has sha256 %x size %d", sum, size, headDB, got, len(blob))
	}
	dir := t.TempDir()
	untar(t, blob, dir)
	gitOut, err := exec.Command(gitBin, "--git-dir", filepath.Join(dir, ".git"), "log", "--format=%H %s", "main").CombinedOutput()
	if err != nil {
		t.Fatalf("git log on the restored tarball: %v\n%s", err, gitOut)
	}
	if string(gitOut) != hash+" first analysis\n" {
		t.Fatalf("git log = %q, want %s first analysis", gitOut, hash)
	}
	show, err := exec.Command(gitBin, "--git-dir", filepath.Join(dir, ".git"), "show", hash+":Runfile").Output()
	if err != nil || !bytes.Equal(show, want) {
		t.Fatalf("git show %s:Runfile = %q, %v", hash, show, err)
	}

	// Adding the same bytes again makes no commit and prints the old one.
	again, _ := mustCLI(t, 0, store, "add", exampleRunfile)
	if strings.TrimSpace(again) != hash {
		t.Fatalf("re-adding identical bytes printed %q, want %s", again, hash)
	}
	mustCLI(t, 0, store, "fsck")
}

func untar(t *testing.T, data []byte, dir string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Fatalf("tar entry %q escapes", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			b, _ := io.ReadAll(tr)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("tar entry %q has type %c", h.Name, h.Typeflag)
		}
	}
}

// consumerState is what a failed command must leave as it was: every table row
// a consumer writes, and the tarball's digest.
func consumerState(t *testing.T, store string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(store, "runprov.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	for _, q := range []string{
		"SELECT name, head, tarball_sha256, tarball_size, updated_at FROM repos ORDER BY name",
		"SELECT repo_id, hash, path, blob, seq FROM commits ORDER BY seq, path",
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&b, vals...)
		}
		rows.Close()
	}
	return b.String()
}

// TestBadRunfilesViaCLI: every bad Runfile golden gets its exact message from
// `add`, exit 125, and the store does not change.
func TestBadRunfilesViaCLI(t *testing.T) {
	store := t.TempDir()
	mustCLI(t, 0, store, "init")
	mustCLI(t, 0, store, "add", exampleRunfile)
	before := consumerState(t, store)
	cases, err := filepath.Glob("../../testdata/runfile/bad/*/Runfile")
	if err != nil || len(cases) < 20 {
		t.Fatalf("found %d bad Runfiles (%v); the goldens are missing", len(cases), err)
	}
	for _, src := range cases {
		name := filepath.Base(filepath.Dir(src))
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(filepath.Dir(src), "want.err"))
			if err != nil {
				t.Fatal(err)
			}
			// The goldens name the file as bad/CASE/Runfile; the CLI names it
			// as it was given.
			wantMsg := "runprov: " + strings.ReplaceAll(strings.TrimRight(string(want), "\n"), "bad/"+name+"/Runfile", src)
			_, errOut, code := cli(t, store, "add", "--path", name+"/Runfile", src)
			if code != 125 {
				t.Fatalf("exit %d, want 125; stderr:\n%s", code, errOut)
			}
			if errOut != wantMsg+"\n" {
				t.Fatalf("stderr:\n%s\nwant:\n%s", errOut, wantMsg)
			}
		})
	}
	if after := consumerState(t, store); after != before {
		t.Fatalf("bad Runfiles changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	mustCLI(t, 0, store, "fsck")
}

// buildRunprov builds the binary once for the tests that need processes.
var buildRunprov = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "runprov-test-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "runprov")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func runprovBinary(t *testing.T) string {
	t.Helper()
	bin, err := buildRunprov()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// testRunfile is a valid Runfile that differs by i.
func testRunfile(i int) []byte {
	return fmt.Appendf(nil, "FROM docker.io/library/busybox@sha256:%064x\nUSER 1000:1000\nCMD [\"echo\", \"%d\"]\n", i+1, i)
}

// TestConcurrentAdds starts 20 add processes at once on one store: each
// succeeds or fails with the retryable busy error; afterwards fsck holds and
// every reported commit is in the log.
func TestConcurrentAdds(t *testing.T) {
	bin := runprovBinary(t)
	store := t.TempDir()
	mustCLI(t, 0, store, "init")
	const n = 20
	type result struct {
		out, errOut string
		err         error
	}
	results := make([]result, n)
	files := t.TempDir()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		f := filepath.Join(files, fmt.Sprintf("r%02d.Runfile", i))
		if err := os.WriteFile(f, testRunfile(i), 0o644); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(bin, "--store", store, "add", "--repo", []string{"default", "other"}[i%2], f)
			var o, e bytes.Buffer
			cmd.Stdout, cmd.Stderr = &o, &e
			<-start
			err := cmd.Run()
			results[i] = result{o.String(), e.String(), err}
		}()
	}
	close(start)
	wg.Wait()
	var reported []string
	for i, r := range results {
		if r.err != nil {
			// The only acceptable failure is the retryable one.
			if !strings.Contains(r.errOut, "run the command again") {
				t.Errorf("add %d failed without a retryable error: %v\n%s", i, r.err, r.errOut)
			}
			continue
		}
		if !commitHash.MatchString(r.out) {
			t.Errorf("add %d printed %q", i, r.out)
			continue
		}
		reported = append(reported, strings.TrimSpace(r.out))
	}
	if len(reported) < n/2 {
		t.Errorf("only %d of %d concurrent adds succeeded", len(reported), n)
	}
	mustCLI(t, 0, store, "fsck")
	logOut, _ := mustCLI(t, 0, store, "--json", "log")
	for _, h := range reported {
		if !strings.Contains(logOut, h) {
			t.Errorf("commit %s was reported but is not in the log", h)
		}
	}
	t.Logf("%d of %d adds succeeded", len(reported), n)
}

// TestAddSurvivesSIGKILL kills add at random points; the store must always
// pass fsck, and every add that reported a commit must have kept it.
func TestAddSurvivesSIGKILL(t *testing.T) {
	bin := runprovBinary(t)
	store := t.TempDir()
	mustCLI(t, 0, store, "init")
	files := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	// Measure one add so the kill points spread over its whole duration.
	f0 := filepath.Join(files, "r0.Runfile")
	os.WriteFile(f0, testRunfile(0), 0o644)
	t0 := time.Now()
	if out, err := exec.Command(bin, "--store", store, "add", f0).CombinedOutput(); err != nil {
		t.Fatalf("add: %v\n%s", err, out)
	}
	span := time.Since(t0)
	var kept []string
	killed := 0
	for i := 1; i <= 40; i++ {
		f := filepath.Join(files, fmt.Sprintf("r%d.Runfile", i))
		os.WriteFile(f, testRunfile(i), 0o644)
		cmd := exec.Command(bin, "--store", store, "add", f)
		var o bytes.Buffer
		cmd.Stdout = &o
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(span)*3/2 + 1)))
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if err == nil && commitHash.MatchString(o.String()) {
			kept = append(kept, strings.TrimSpace(o.String()))
		} else {
			killed++
		}
		if out, err := exec.Command(bin, "--store", store, "fsck").CombinedOutput(); err != nil {
			t.Fatalf("after kill %d: fsck failed: %v\n%s", i, err, out)
		}
	}
	if killed == 0 {
		t.Fatalf("no add was killed before it finished; the test did not test anything")
	}
	logOut, _ := mustCLI(t, 0, store, "--json", "log")
	for _, h := range kept {
		if !strings.Contains(logOut, h) {
			t.Errorf("commit %s was reported but is lost", h)
		}
	}
	// Killed adds leave private temp directories; the next command clears them.
	mustCLI(t, 0, store, "log")
	left, _ := os.ReadDir(filepath.Join(store, "tmp"))
	if len(left) != 0 {
		t.Errorf("temp directories of killed adds were not cleaned: %d left", len(left))
	}
	t.Logf("killed %d adds, %d finished", killed, len(kept))
}

// TestUsageAndMissingStore: usage errors exit 2; a missing store says how to
// make one and exits 125.
func TestUsageAndMissingStore(t *testing.T) {
	store := filepath.Join(t.TempDir(), "none")
	_, errOut := mustCLI(t, 125, store, "log")
	if !strings.Contains(errOut, "runprov init") {
		t.Fatalf("missing store: stderr does not say what to do:\n%s", errOut)
	}
	mustCLI(t, 2, store, "add")
	mustCLI(t, 2, store, "no-such-command")
	mustCLI(t, 0, store, "init")
	_, errOut = mustCLI(t, 125, store, "cat", "deadbeef")
	if !strings.Contains(errOut, "deadbeef") {
		t.Fatalf("cat of an unknown commit: %s", errOut)
	}
	_, errOut = mustCLI(t, 125, store, "query", "DELETE FROM commits")
	if !strings.Contains(strings.ToLower(errOut), "read-only") && !strings.Contains(strings.ToLower(errOut), "not authorized") {
		t.Fatalf("a writing query was not refused clearly: %s", errOut)
	}
	_ = context.Background
}

// TestCatLogRepoAndDefaultPath: the path inside the repo defaults to the
// file's base name (whatever it is called), log --repo lists that repo's
// commits only, and a prefix that names several commits is refused with the
// candidates.
func TestCatLogRepoAndDefaultPath(t *testing.T) {
	store := newCLIStore(t)
	dir := filepath.Join(t.TempDir(), "sub", "dir")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// 17 commits: two of them share their first hex digit.
	const n = 17
	byRepo := map[string][]string{}
	var hashes []string
	for i := range n {
		repo := []string{"default", "other"}[i%2]
		f := filepath.Join(dir, fmt.Sprintf("job-%02d.rf", i))
		if err := os.WriteFile(f, testRunfile(i), 0o644); err != nil {
			t.Fatal(err)
		}
		out, _ := mustCLI(t, 0, store, "add", "--repo", repo, f)
		h := strings.TrimSpace(out)
		byRepo[repo] = append(byRepo[repo], h)
		hashes = append(hashes, h)

		got, _ := mustCLI(t, 0, store, "cat", h+":"+fmt.Sprintf("job-%02d.rf", i))
		if got != string(testRunfile(i)) {
			t.Fatalf("cat %s:job-%02d.rf = %q", h, i, got)
		}
	}

	for repo, want := range byRepo {
		out, _ := mustCLI(t, 0, store, "--json", "log", "--repo", repo)
		var rows []map[string]any
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("log --json --repo %s: %v\n%s", repo, err, out)
		}
		if len(rows) != len(want) {
			t.Fatalf("log --repo %s lists %d commits, want %d:\n%s", repo, len(rows), len(want), out)
		}
		mine := map[string]bool{}
		for _, h := range want {
			mine[h] = true
		}
		for _, r := range rows {
			h, _ := r["commit"].(string)
			if r["repo"] != repo || !mine[h] {
				t.Errorf("log --repo %s lists %v", repo, r)
			}
			p, _ := r["path"].(string)
			if !regexp.MustCompile(`^job-\d\d\.rf$`).MatchString(p) {
				t.Errorf("commit %s has path %q, want the file's base name", h, p)
			}
		}
		text, _ := mustCLI(t, 0, store, "log", "--repo", repo)
		for _, h := range hashes {
			if strings.Contains(text, h[:12]) != mine[h] {
				t.Errorf("log --repo %s: commit %s shown %v, want %v:\n%s", repo, h[:12], !mine[h], mine[h], text)
			}
		}
	}
	// An unknown repo is refused, naming the repos there are and how to
	// make it; a store without any repo still has an empty log.
	for _, args := range [][]string{{"log", "--repo", "no-such-repo"}, {"--json", "log", "--repo", "no-such-repo"}} {
		out, errs := mustCLI(t, exitRunprov, store, args...)
		if out != "" || !strings.Contains(errs, `no repository named "no-such-repo"`) || !strings.Contains(errs, "default, other") ||
			!strings.Contains(errs, "runprov add --repo no-such-repo") {
			t.Errorf("runprov %s: stdout %q, stderr:\n%s", strings.Join(args, " "), out, errs)
		}
	}
	empty := newCLIStore(t)
	if out, _ := mustCLI(t, 0, empty, "--json", "log"); strings.TrimSpace(out) != "[]" {
		t.Errorf("log --json of a store without repos: %q", out)
	}
	if out, _ := mustCLI(t, 0, empty, "log"); strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("log of a store without repos lists rows:\n%s", out)
	}
	if _, errs := mustCLI(t, exitRunprov, empty, "log", "--repo", "default"); !strings.Contains(errs, "the store has none yet") {
		t.Errorf("log --repo default of a store without repos:\n%s", errs)
	}

	first := map[byte][]string{}
	for _, h := range hashes {
		first[h[0]] = append(first[h[0]], h)
	}
	var shared []string
	for _, hs := range first {
		if len(hs) > 1 {
			shared = hs
			break
		}
	}
	if shared == nil {
		t.Fatalf("no two of %d commits share a first digit: %v", n, hashes)
	}
	prefix := shared[0][:1]
	out, errs := mustCLI(t, 125, store, "cat", prefix)
	if out != "" || !strings.Contains(errs, "ambiguous") || !strings.Contains(errs, "give more digits") {
		t.Fatalf("cat %s with %d matching commits: stdout %q stderr:\n%s", prefix, len(shared), out, errs)
	}
	for _, h := range shared {
		if !strings.Contains(errs, h[:7]) {
			t.Errorf("the ambiguous-prefix error does not name candidate %s:\n%s", h[:7], errs)
		}
	}
	// A longer prefix of one of them is unique again.
	got, _ := mustCLI(t, 0, store, "cat", shared[0][:12])
	if !strings.HasPrefix(got, "FROM ") {
		t.Fatalf("cat %s: %q", shared[0][:12], got)
	}
	fsckHolds(t, store)
}

// -q leaves stderr to errors: init says nothing there, and still prints the
// store on stdout.
func TestInitQuiet(t *testing.T) {
	store := filepath.Join(t.TempDir(), "s")
	for _, pass := range []string{"create", "reopen"} {
		out, errOut := mustCLI(t, 0, store, "-q", "init")
		if errOut != "" || strings.TrimSpace(out) != store {
			t.Fatalf("%s: -q init: stdout %q, stderr %q; want the store and nothing on stderr", pass, out, errOut)
		}
	}
	if _, errOut := mustCLI(t, 0, store, "init"); !strings.Contains(errOut, "exists") {
		t.Fatalf("init without -q on an existing store: stderr %q, want it to say the store exists", errOut)
	}
}
