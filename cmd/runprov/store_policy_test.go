package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/runprov/runprov/core"
)

// countingRegistry is a real registry on loopback holding a busybox image;
// it counts the requests it receives. It returns the image's reference by
// digest and the counter.
func countingRegistry(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	_, host := cliTestIndex(t)
	var n atomic.Int32
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	repo := strings.TrimPrefix(srv.URL, "http://") + "/test/busybox"
	ref := repo + "@" + digest(t, host)
	d, err := name.NewDigest(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(d, host); err != nil {
		t.Fatal(err)
	}
	n.Store(0)
	return ref, &n
}

// addRef commits a Runfile whose FROM is ref and returns the commit.
func addRef(t *testing.T, store, ref string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "Runfile")
	if err := os.WriteFile(p, []byte("FROM "+ref+"\nCMD [\"/bin/sh\", \"-c\", \"true\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := mustCLI(t, 0, store, "add", p)
	return strings.TrimSpace(out)
}

// TestRunTREStoreDoesNotPullByDefault: in a store that requires approval,
// run does not contact the registry for a missing image unless --pull
// missing is given; it refuses (125) saying how to get the image. A plain
// store still pulls by default.
func TestRunTREStoreDoesNotPullByDefault(t *testing.T) {
	ref, requests := countingRegistry(t)
	store := newCLIStore(t, "--tre")
	commit := addRef(t, store, ref)

	_, errs := mustCLI(t, exitRunprov, store, "run", commit, "--no-input")
	if n := requests.Load(); n != 0 {
		t.Errorf("run in a --tre store sent %d requests to the registry by default, want none", n)
	}
	for _, want := range []string{"not pulled", "runprov image import", "--pull missing"} {
		if !strings.Contains(errs, want) {
			t.Errorf("refusal does not say %q:\n%s", want, errs)
		}
	}
	if n := runCount(t, store); n != 0 {
		t.Errorf("%d runs recorded for a refused run", n)
	}

	// Asked explicitly, it pulls; the unapproved image is then refused.
	_, errs = mustCLI(t, exitRunprov, store, "run", commit, "--pull", "missing", "--no-input")
	if requests.Load() == 0 {
		t.Errorf("run --pull missing sent no request to the registry")
	}
	if !strings.Contains(errs, "runprov image approve") {
		t.Errorf("pulled unapproved image: stderr does not name runprov image approve:\n%s", errs)
	}
	out, _ := mustCLI(t, 0, store, "--csv", "image", "ls")
	if !strings.Contains(out, strings.SplitN(ref, "@", 2)[1]) {
		t.Errorf("the image pulled with --pull missing is not stored:\n%s", out)
	}

	// A store without require-approval pulls by default, as before.
	requests.Store(0)
	plain := newCLIStore(t)
	cli(t, plain, "run", addRef(t, plain, ref), "--no-input")
	if requests.Load() == 0 {
		t.Errorf("run in a plain store did not pull the missing image by default")
	}
}

// TestImageRmRefusesImageRunsUsed: rm of an image a recorded run used is
// refused (125) naming the run, unless --force, whose rm event names the
// runs; gc keeps the image.
func TestImageRmRefusesImageRunsUsed(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, echoRunfile)
	r, errs, code := rs.run(t, "--no-input")
	if code != 0 || r == nil {
		t.Fatalf("run: exit %d\n%s", code, errs)
	}
	short := core.ShortRunID(r.ID)

	_, errs = mustCLI(t, exitRunprov, rs.dir, "image", "rm", rs.image)
	for _, want := range []string{short, "1 recorded run(s)", "reproduce", "--force"} {
		if !strings.Contains(errs, want) {
			t.Errorf("image rm of an image a run used: stderr does not say %q:\n%s", want, errs)
		}
	}
	mustCLI(t, 0, rs.dir, "image", "gc")
	mustCLI(t, 0, rs.dir, "image", "verify", rs.image)
	if out, _ := mustCLI(t, 0, rs.dir, "--csv", "image", "ls"); !strings.Contains(out, rs.image) {
		t.Fatalf("the image is gone after a refused rm and gc:\n%s", out)
	}

	out, _ := mustCLI(t, 0, rs.dir, "image", "rm", "--force", rs.image)
	if !strings.Contains(out, rs.image) {
		t.Errorf("image rm --force printed %q", out)
	}
	out, _ = mustCLI(t, 0, rs.dir, "--json", "image", "log", rs.image)
	var evs []core.ImageEvent
	if err := json.Unmarshal([]byte(out), &evs); err != nil || len(evs) == 0 {
		t.Fatalf("image log: %v\n%s", err, out)
	}
	last := evs[len(evs)-1]
	if last.Event != core.ImageEventRemove || !strings.Contains(last.Note, "forced") || !strings.Contains(last.Note, short) {
		t.Errorf("rm --force event %+v: want an rm whose note names run %s", last, short)
	}
}

// TestConfigLog: init --tre and every config change are rows of
// config_events with who, the old and the new value; config log lists them.
func TestConfigLog(t *testing.T) {
	store := newCLIStore(t, "--tre")
	mustCLI(t, 0, store, "config", "require-approval", "false")
	mustCLI(t, 0, store, "config", "require-approval", "false") // no change, no event
	if out, _ := mustCLI(t, 0, store, "config", "require-approval"); strings.TrimSpace(out) != "false" {
		t.Errorf("config require-approval = %q, want false", out)
	}
	out, _ := mustCLI(t, 0, store, "--json", "config", "log")
	var evs []core.ConfigEvent
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		t.Fatalf("config log --json: %v\n%s", err, out)
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("config log: %d events, want 2 (init --tre, then the change)\n%s", len(evs), out)
	}
	if e := evs[0]; e.Key != "require-approval" || e.Old != nil || e.New != "true" || !strings.Contains(e.Note, "init") {
		t.Errorf("init --tre event %+v", e)
	}
	if e := evs[1]; e.Key != "require-approval" || e.Old == nil || *e.Old != "true" || e.New != "false" {
		t.Errorf("config change event %+v", e)
	}
	for _, e := range evs {
		if e.User != me.Username || e.UID != os.Getuid() || e.At.IsZero() {
			t.Errorf("event %+v: want user %s, uid %d and a time", e, me.Username, os.Getuid())
		}
	}
	out, _ = mustCLI(t, 0, store, "--csv", "config", "log", "require-approval")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.Contains(lines[2], "true,false,"+me.Username) {
		t.Errorf("config log --csv require-approval:\n%s", out)
	}
	out, _ = mustCLI(t, 0, store, "--csv", "query", "SELECT count(*) FROM config_events")
	if !strings.HasSuffix(strings.TrimSpace(out), "2") {
		t.Errorf("query config_events:\n%s", out)
	}
}
