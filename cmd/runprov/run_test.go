package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/core/coretest"
	"github.com/runprov/runprov/drivers/runtime"
)

// requireRunc makes a test that runs containers unavailable without root
// and runc (it fails in CI).
func requireRunc(t *testing.T) {
	t.Helper()
	coretest.RequireRoot(t)
	coretest.RequireBinary(t, "runc")
}

// busyboxLayout writes an OCI image layout of a busybox-static image to a
// new directory and returns it with the image's manifest digest. dirs are
// extra empty directories of the image (mount points an image may or may
// not have); /etc always exists, with a passwd file.
func busyboxLayout(t *testing.T, dirs ...string) (string, string) {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		coretest.Unavailable(t, "/bin/busybox is missing: install busybox-static")
	}
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	mod := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	dir := func(name string) {
		tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mod})
	}
	dir("bin")
	tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb)), ModTime: mod})
	tw.Write(bb)
	for _, l := range []string{"sh", "id", "cat", "touch", "mkdir", "ls", "sleep", "grep", "echo", "nc", "wc", "cut", "tr", "sha256sum", "unshare", "mount", "linux32", "head", "tail", "true", "env", "rm", "test"} {
		tw.WriteHeader(&tar.Header{Name: "bin/" + l, Typeflag: tar.TypeSymlink, Linkname: "busybox", ModTime: mod})
	}
	dir("etc")
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n")
	tw.WriteHeader(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(passwd)), ModTime: mod})
	tw.Write(passwd)
	for _, d := range dirs {
		dir(strings.Trim(d, "/"))
	}
	tw.Close()
	return writeLayerLayout(t, raw.Bytes(), func(c *v1.Config) {
		c.Cmd = []string{"/bin/sh", "-c", "echo image default"}
		c.Env = []string{"PATH=/bin", "FROM_IMAGE=1"}
	})
}

// writeLayerLayout writes an OCI layout of a one-layer image for the host
// (the layer is the uncompressed tar raw, gzipped here) whose config edit
// sets; it returns the layout's directory and the manifest digest.
func writeLayerLayout(t *testing.T, raw []byte, edit func(*v1.Config)) (string, string) {
	t.Helper()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	data := gz.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), l)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", hostArch()
	edit(&cf.Config)
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return out, digest(t, img)
}

// runStore is a store with a busybox image imported and a Runfile added.
type runStore struct {
	dir    string
	image  string // manifest digest
	commit string
}

// newRunStore makes a store, imports a busybox image and commits runfile,
// in which IMAGE stands for the image reference.
func newRunStore(t *testing.T, runfile string, initArgs ...string) *runStore {
	t.Helper()
	store := newCLIStore(t, initArgs...)
	lay, d := busyboxLayout(t)
	mustCLI(t, 0, store, "image", "import", lay)
	rs := &runStore{dir: store, image: d}
	rs.commit = rs.add(t, runfile)
	t.Cleanup(func() { checkNoContainers(t, store) })
	return rs
}

// add commits a Runfile (IMAGE replaced by the image) and returns the commit.
func (rs *runStore) add(t *testing.T, runfile string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "Runfile")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(runfile, "IMAGE", "busybox@"+rs.image)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := mustCLI(t, 0, rs.dir, "add", p)
	return strings.TrimSpace(out)
}

// run runs `runprov --json run COMMIT args...` and returns the record,
// stdout/stderr text and the exit code. The record is nil when runprov
// refused the run.
func (rs *runStore) run(t *testing.T, args ...string) (*core.Run, string, int) {
	t.Helper()
	out, errs, code := cli(t, rs.dir, append([]string{"--json", "run", rs.commit}, args...)...)
	var r core.Run
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return nil, errs, code
	}
	return &r, errs, code
}

// checkNoContainers fails when runprov's runc state directory still lists
// a container.
func checkNoContainers(t *testing.T, store string) {
	t.Helper()
	rc := &runtime.Runc{Root: filepath.Join(store, "runtime", "runc")}
	cs, err := rc.List(context.Background())
	if err != nil {
		t.Errorf("runc list: %v", err)
	}
	if len(cs) > 0 {
		t.Errorf("containers left behind: %+v", cs)
	}
}

func runCount(t *testing.T, store string) int {
	t.Helper()
	out, _ := mustCLI(t, 0, store, "query", "--csv", "SELECT count(*) FROM runs")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var n int
	json.Unmarshal([]byte(lines[len(lines)-1]), &n)
	return n
}

const echoRunfile = `FROM IMAGE
ARG WHO=world
LABEL purpose=test
ENV GREETING="hello ${WHO}"
CMD ["/bin/sh", "-c", "echo $GREETING; echo to-stderr >&2"]
`

func TestRunRecordsAndStreams(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, echoRunfile)
	r, errs, code := rs.run(t, "--no-input", "--arg", "WHO=tests")
	if code != 0 || r == nil {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	if r.Status != core.RunSucceeded || r.ExitCode == nil || *r.ExitCode != 0 {
		t.Errorf("status %s exit %v", r.Status, r.ExitCode)
	}
	if !strings.Contains(errs, "runprov: run "+r.ID) {
		t.Errorf("the run id is not on stderr:\n%s", errs)
	}
	// --json sends the container's stdout to stderr.
	if !strings.Contains(errs, "hello tests") || !strings.Contains(errs, "to-stderr") {
		t.Errorf("container output not streamed:\n%s", errs)
	}
	logs, _ := os.ReadFile(filepath.Join(rs.dir, "runs", r.ID, "stdout.log"))
	if string(logs) != "hello tests\n" {
		t.Errorf("stdout.log = %q", logs)
	}
	logs, _ = os.ReadFile(filepath.Join(rs.dir, "runs", r.ID, "stderr.log"))
	if string(logs) != "to-stderr\n" {
		t.Errorf("stderr.log = %q", logs)
	}
	if r.Args["WHO"] != "tests" || r.Labels["purpose"] != "test" || r.User != "65534:65534" || r.Runtime != "runc" ||
		r.RuntimeVersion == "" || r.Executor != "local" || r.ImageDigest != rs.image || !strings.HasPrefix(rs.commit, r.Commit[:len(rs.commit)]) {
		t.Errorf("record: %+v", r)
	}
	if !contains(r.Env, "GREETING=hello tests") || !contains(r.Env, "FROM_IMAGE=1") || !contains(r.Env, "TMPDIR=/scratch") {
		t.Errorf("env %v", r.Env)
	}
	if len(r.Steps) != 1 || r.Steps[0].ExitCode != 0 || r.Steps[0].Start.IsZero() {
		t.Errorf("steps %+v", r.Steps)
	}
	if r.SystemKernelSHA256 == "" || r.EnvironmentSHA256 == "" || r.Hostname == "" {
		t.Errorf("no host snapshot: %+v", r)
	}
	var cfg struct {
		Process struct{ Args []string }
		Root    struct{ Readonly bool }
	}
	data, err := os.ReadFile(filepath.Join(rs.dir, "runs", r.ID, "config.json"))
	if err != nil || json.Unmarshal(data, &cfg) != nil || !cfg.Root.Readonly || len(cfg.Process.Args) != 3 {
		t.Errorf("config.json: %v %s", err, data)
	}
	// The stored record is the printed one.
	out, _ := mustCLI(t, 0, rs.dir, "query", "--csv", "SELECT status, exit_code, runtime FROM runs WHERE id = '"+r.ID+"'")
	if !strings.Contains(out, "succeeded,0,runc") {
		t.Errorf("stored row: %s", out)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestRunExitStatusAndTimeout(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, echoRunfile)
	r, errs, code := rs.run(t, "--no-input", "--", "/bin/sh", "-c", "exit 3")
	if code != 3 || r == nil || r.Status != core.RunFailed || r.ExitCode == nil || *r.ExitCode != 3 {
		t.Fatalf("exit 3: code %d record %+v\n%s", code, r, errs)
	}
	start := time.Now()
	r, errs, code = rs.run(t, "--no-input", "--timeout", "1s", "--", "/bin/sleep", "60")
	if time.Since(start) > 30*time.Second {
		t.Errorf("the timeout did not kill the run in time: %s", time.Since(start))
	}
	if code != 137 || r == nil || r.Status != core.RunFailed || !strings.Contains(r.Reason, "timeout") || r.Limits.Timeout != time.Second {
		t.Fatalf("timeout: code %d record %+v\n%s", code, r, errs)
	}
}

// TestRunRefusals: each refusal comes before anything runs (no run row,
// no container), exits 125 and says what was wrong.
func TestRunRefusals(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, echoRunfile)
	in := t.TempDir()
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "old.txt"), []byte("x"), 0o644)

	check := func(name, want string, args ...string) {
		t.Helper()
		before := runCount(t, rs.dir)
		r, errs, code := rs.run(t, args...)
		if code != exitRunprov || r != nil {
			t.Errorf("%s: exit %d, want 125\n%s", name, code, errs)
		}
		if !strings.Contains(errs, want) {
			t.Errorf("%s: stderr lacks %q:\n%s", name, want, errs)
		}
		if n := runCount(t, rs.dir); n != before {
			t.Errorf("%s: a run was recorded", name)
		}
	}
	check("missing input", "no such file", "--input", "data="+filepath.Join(in, "nope"))
	check("unknown input", "has no INPUT", "--input", "other="+in)
	check("outputs not empty", "not empty", "--outputs", full)
	check("unknown arg", "declares no ARG", "--arg", "NOPE=1")

	mustCLI(t, 0, rs.dir, "config", core.SettingRequireApproval, "true")
	check("not approved", "runprov image approve")
	mustCLI(t, 0, rs.dir, "image", "approve", rs.image, "--note", "test")

	var layerBlob string
	var maxSize int64
	blobs, _ := filepath.Glob(filepath.Join(rs.dir, "images", "blobs", "sha256", "*"))
	for _, b := range blobs {
		if fi, err := os.Stat(b); err == nil && fi.Size() > maxSize {
			layerBlob, maxSize = b, fi.Size()
		}
	}
	// A run records the blobs' fingerprints (the verification cache) only
	// for blobs that last changed more than 2 s before: wait for that, so
	// that the tampering below is caught by a run that uses the cache.
	var st syscall.Stat_t
	if err := syscall.Stat(layerBlob, &st); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(time.Unix(st.Ctim.Sec, st.Ctim.Nsec).Add(2100 * time.Millisecond)))
	if r, errs, code := rs.run(t, "--no-input"); code != 0 || !r.Approved {
		t.Fatalf("approved image: exit %d\n%s", code, errs)
	}
	cache, err := os.ReadFile(filepath.Join(rs.dir, "images", ".runprov-verified"))
	if err != nil || !strings.Contains(string(cache), filepath.Base(layerBlob)) {
		t.Fatalf("the run left no fingerprint of the layer in the verification cache: %v\n%s", err, cache)
	}

	// Flip one byte of the layer blob: its ctime changes, the next run
	// re-hashes it.
	data, err := os.ReadFile(layerBlob)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	os.Chmod(layerBlob, 0o644)
	if err := os.WriteFile(layerBlob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	check("tampered image", "digest mismatch", "--no-input")
}

// abortRunfile writes into its scratch directory, then sleeps.
const abortRunfile = `FROM IMAGE
SCRATCH /scratch
CMD ["/bin/sh", "-c", "echo secret > /scratch/f && echo wrote-scratch && sleep 60"]
`

// TestRunAbortOnSIGINT runs runprov as a subprocess (this test binary, see
// TestRunHelperProcess), interrupts it while the container sleeps, and
// checks that the container is gone, the scratch directory removed and the
// run recorded aborted.
func TestRunAbortOnSIGINT(t *testing.T) {
	testRunAbort(t, os.Interrupt, 130, "SIGINT")
}

// TestRunAbortOnSIGTERM is TestRunAbortOnSIGINT with SIGTERM: exit 143.
func TestRunAbortOnSIGTERM(t *testing.T) {
	testRunAbort(t, syscall.SIGTERM, 143, "SIGTERM")
}

func testRunAbort(t *testing.T, sig os.Signal, wantCode int, reason string) {
	requireRunc(t)
	rs := newRunStore(t, abortRunfile)
	cmd, stderr := helperProcess(t, rs.dir, "run", rs.commit)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rc := &runtime.Runc{Root: filepath.Join(rs.dir, "runtime", "runc")}
	var id, container string
	waitFor(t, 30*time.Second, func() bool {
		cs, _ := rc.List(context.Background())
		if len(cs) == 1 && cs[0].Status == "running" && strings.Contains(stderr.String(), "wrote-scratch") {
			container, id = cs[0].ID, filepath.Base(cs[0].Bundle) // the bundle is STORE/runs/RUN
			return true
		}
		return false
	})
	t.Cleanup(func() { cleanupContainers(t, rs.dir) }) // what a failing test leaves
	scratch := filepath.Join(rs.dir, "runs", id, "scratch")
	if ents, err := os.ReadDir(scratch); err != nil || len(ents) == 0 {
		t.Fatalf("the running run's scratch %s: %v %v", scratch, ents, err)
	}
	if _, err := os.Stat(filepath.Join(rc.Root, container)); err != nil {
		t.Fatalf("runc state of the running container: %v", err)
	}
	cmd.Process.Signal(sig)
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != wantCode {
		t.Errorf("exit %d (%v), want %d\n%s", code, err, wantCode, stderr)
	}
	out, _ := mustCLI(t, 0, rs.dir, "query", "--csv", "SELECT id, status, reason FROM runs")
	if !strings.Contains(out, id+",aborted,"+reason) {
		t.Errorf("runs: %s, want %s aborted %s\n%s", out, id, reason, stderr)
	}
	// Right after runprov exits, before any other command could clean up.
	if cs, err := rc.List(context.Background()); err != nil || len(cs) != 0 {
		t.Errorf("containers after the abort: %+v %v", cs, err)
	}
	if _, err := os.Stat(filepath.Join(rc.Root, container)); !os.IsNotExist(err) {
		t.Errorf("runc state of the container %s is left: %v", container, err)
	}
	if _, err := os.Stat(scratch); !os.IsNotExist(err) {
		t.Errorf("the aborted run's scratch is left: %v", err)
	}
	if _, err := os.Stat(filepath.Join("/run/runprov", id)); !os.IsNotExist(err) {
		t.Errorf("the run's root /run/runprov/%s is left: %v", id, err)
	}
}

// TestRunStaleRunAborted: a runprov killed with SIGKILL leaves its run
// running, its container and its overlay root; the next command marks the
// run aborted and removes the rest.
func TestRunStaleRunAborted(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, echoRunfile)
	cmd, stderr := helperProcess(t, rs.dir, "run", rs.commit, "--no-input", "--", "/bin/sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rc := &runtime.Runc{Root: filepath.Join(rs.dir, "runtime", "runc")}
	waitFor(t, 30*time.Second, func() bool {
		cs, _ := rc.List(context.Background())
		return len(cs) == 1 && cs[0].Status == "running"
	})
	// The host snapshot is taken while the container starts, and stored
	// on the running row as soon as it is in.
	snapshotted := func() bool {
		out, _ := mustCLI(t, 0, rs.dir, "query", "--csv", "SELECT count(*) FROM runs WHERE environment_sha256 <> '' AND system_kernel_sha256 <> ''")
		return strings.HasSuffix(strings.TrimSpace(out), "\n1")
	}
	waitFor(t, 30*time.Second, snapshotted)
	cmd.Process.Kill()
	cmd.Wait()
	t.Cleanup(func() { cleanupContainers(t, rs.dir) }) // what a failing test leaves
	out, _ := mustCLI(t, 0, rs.dir, "query", "--csv", "SELECT id, status FROM runs")
	if !strings.Contains(out, "aborted") {
		t.Errorf("runs: %s\n%s", out, stderr)
	}
	if !snapshotted() {
		t.Errorf("the aborted run lost its host snapshot")
	}
	if cs, _ := rc.List(context.Background()); len(cs) != 0 {
		t.Errorf("the next command left the dead run's container: %+v", cs)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		id, _, _ := strings.Cut(l, ",")
		if _, err := os.Stat(filepath.Join("/run/runprov", id)); !os.IsNotExist(err) {
			t.Errorf("the dead run's overlay root is left: %v", err)
		}
	}
}

// cleanupContainers kills and deletes what a killed runprov left of the
// runs of store, and only those: the overlay roots of every store share
// /run/runprov, and other tests (or a Slurm node) may be running there.
func cleanupContainers(t *testing.T, store string) {
	rc := &runtime.Runc{Root: filepath.Join(store, "runtime", "runc")}
	cs, _ := rc.List(context.Background())
	for _, c := range cs {
		rc.Delete(context.Background(), c.ID)
	}
	runs, _ := os.ReadDir(filepath.Join(store, "runs"))
	for _, r := range runs {
		root := filepath.Join("/run/runprov", r.Name())
		if _, err := os.Stat(root); err != nil {
			continue
		}
		// Every mount under the root first (inputs, the overlay): never
		// remove files through a mounted input.
		info, _ := os.ReadFile("/proc/self/mountinfo")
		var mounts []string
		for _, l := range strings.Split(string(info), "\n") {
			if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], root+"/") {
				mounts = append(mounts, f[4])
			}
		}
		sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
		for _, m := range mounts {
			exec.Command("umount", "-l", m).Run()
		}
		os.RemoveAll(root)
	}
}

// helperProcess returns a command running runprov (this test binary) with
// args, its stderr captured.
func helperProcess(t *testing.T, store string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunHelperProcess$")
	argsJSON, _ := json.Marshal(append([]string{"--store", store}, args...))
	cmd.Env = append(os.Environ(), "RUNPROV_HELPER_ARGS="+string(argsJSON))
	var stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	t.Cleanup(func() {
		if cmd.Process != nil && cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &stderr
}

// TestRunHelperProcess is runprov's main when RUNPROV_HELPER_ARGS holds
// the arguments (a JSON list): subprocess tests (signals, another user)
// run this test binary instead of building runprov. Run normally, it
// checks that runprov version works in-process.
func TestRunHelperProcess(t *testing.T) {
	argsJSON := os.Getenv("RUNPROV_HELPER_ARGS")
	if argsJSON == "" {
		var out bytes.Buffer
		if code := execute(context.Background(), []string{"version"}, strings.NewReader(""), &out, &out); code != 0 || out.Len() == 0 {
			t.Fatalf("runprov version: exit %d: %s", code, out.String())
		}
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(argsJSON), &args); err != nil {
		panic(err)
	}
	// As main does.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met in %s", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunChRun: ch-run cannot give read-only inputs or an isolated
// network, so it is refused; --allow-weaker-sandbox runs it and the record
// says so.
func TestRunChRun(t *testing.T) {
	coretest.RequireRoot(t)
	coretest.RequireBinary(t, "ch-run")
	rs := newRunStore(t, echoRunfile)
	in := filepath.Join(t.TempDir(), "in")
	os.Mkdir(in, 0o755)
	os.WriteFile(filepath.Join(in, "x.txt"), []byte("from the input\n"), 0o644)

	r, errs, code := rs.run(t, "--runtime", "ch-run", "--input", "data="+in)
	if code != exitRunprov || r != nil || !strings.Contains(errs, "--allow-weaker-sandbox") || !strings.Contains(errs, "read-only INPUT binds") {
		t.Fatalf("ch-run without --allow-weaker-sandbox: exit %d\n%s", code, errs)
	}
	r, errs, code = rs.run(t, "--runtime", "ch-run", "--allow-weaker-sandbox", "--input", "data="+in,
		"--", "/bin/sh", "-c", "cat /safe_data/x.txt; id -u; echo out > /safe_outputs/o.txt")
	if code != 0 || r == nil {
		t.Fatalf("ch-run: exit %d\n%s", code, errs)
	}
	if !r.WeakerSandbox || r.Runtime != "ch-run" || !strings.HasPrefix(r.RuntimeVersion, "0.") || r.Status != core.RunSucceeded {
		t.Errorf("record: runtime %s %s weaker %v status %s", r.Runtime, r.RuntimeVersion, r.WeakerSandbox, r.Status)
	}
	if !strings.Contains(errs, "from the input\n65534\n") {
		t.Errorf("ch-run output:\n%s", errs)
	}
	if len(r.Outputs) != 1 || r.Outputs[0].Path != "o.txt" {
		t.Errorf("outputs %+v", r.Outputs)
	}
	out, _ := mustCLI(t, 0, rs.dir, "query", "--csv", "SELECT runtime, weaker_sandbox FROM runs")
	if !strings.Contains(out, "ch-run,1") {
		t.Errorf("stored: %s", out)
	}
}

// TestRunLimits: LIMITs are cgroup limits: forks beyond pids fail, a
// process that needs more memory is killed; the record says they held.
func TestRunLimits(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, "FROM IMAGE\nLIMIT memory=32m pids=20\nCMD [\"/bin/true\"]\n")
	r, errs, _ := rs.run(t, "--no-input", "--", "/bin/sh", "-c", "sh -c 'i=0; while [ $i -lt 40 ]; do sleep 1 & i=$((i+1)); done' 2>/dev/null; echo forkloop=$?")
	if r == nil {
		t.Fatalf("pids: %s", errs)
	}
	if r.Limits.MemoryBytes != 32<<20 || r.Limits.Pids != 20 || r.Limits.Note != "" {
		t.Errorf("limits %+v", r.Limits)
	}
	if got := parseKV(errs)["forkloop"]; got == "" || got == "0" {
		t.Errorf("40 processes started under pids=20 (forkloop=%q):\n%s", got, errs)
	}
	r, errs, code := rs.run(t, "--no-input", "--", "/bin/sh", "-c", "head -c 200000000 /dev/zero | tail > /dev/null && echo survived")
	if r == nil || strings.Contains(errs, "survived") || code == 0 {
		t.Errorf("a process used 200 MB under memory=32m: exit %d\n%s", code, errs)
	}
}

// TestRunSteps: RUN lines run first, each its own container with the same
// mounts (scratch and outputs carry over), then the main command; a VOLUME
// outlives the run; the first failing step stops the run.
func TestRunSteps(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, `FROM IMAGE
VOLUME cache /cache
SCRATCH /scratch
OUTPUT /out
RUN echo from-step-1 > /scratch/s
RUN ["/bin/sh", "-c", "cat /scratch/s > /out/carried; echo x >> /cache/count"]
CMD ["/bin/sh", "-c", "cat /out/carried; echo count=$(wc -l < /cache/count)"]
`)
	for i, want := range []string{"1", "2"} {
		r, errs, code := rs.run(t)
		if code != 0 || r == nil {
			t.Fatalf("run %d: exit %d\n%s", i, code, errs)
		}
		if !strings.Contains(errs, "from-step-1") || parseKV(errs)["count"] != want {
			t.Errorf("run %d: want the step's file and count=%s:\n%s", i, want, errs)
		}
		if len(r.Steps) != 3 || r.Steps[0].Argv[2] != "echo from-step-1 > /scratch/s" || r.Steps[2].Argv[0] != "/bin/sh" {
			t.Errorf("steps %+v", r.Steps)
		}
		for _, st := range r.Steps {
			if st.ExitCode != 0 || st.End.Before(st.Start) {
				t.Errorf("step %+v", st)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(rs.dir, "volumes", "cache", "count")); err != nil {
		t.Errorf("volume: %v", err)
	}

	rs.commit = rs.add(t, "FROM IMAGE\nRUN exit 4\nCMD [\"/bin/sh\", \"-c\", \"echo main ran\"]\n")
	r, errs, code := rs.run(t, "--no-input")
	if code != 4 || r == nil || r.Status != core.RunFailed || strings.Contains(errs, "main ran") {
		t.Fatalf("failing step: exit %d\n%s", code, errs)
	}
	if r.Steps[0].ExitCode != 4 || r.Steps[1].ExitCode != -1 || !strings.Contains(r.Reason, "RUN step 1") {
		t.Errorf("steps %+v reason %q", r.Steps, r.Reason)
	}
}

// TestRunTREStoreRequiresApproval: a store made with `init --tre` refuses
// to run an image nobody approved (exit 125, nothing recorded, the hint
// names `runprov image approve`) and runs it once it is approved.
func TestRunTREStoreRequiresApproval(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, echoRunfile, "--tre")
	r, errs, code := rs.run(t, "--no-input")
	if code != exitRunprov || r != nil {
		t.Errorf("unapproved image in a --tre store: exit %d, want %d\n%s", code, exitRunprov, errs)
	}
	if !strings.Contains(errs, "runprov image approve") {
		t.Errorf("stderr does not name runprov image approve:\n%s", errs)
	}
	if n := runCount(t, rs.dir); n != 0 {
		t.Errorf("%d runs recorded for a refused run", n)
	}
	mustCLI(t, 0, rs.dir, "image", "approve", rs.image, "--note", "reviewed")
	if r, errs, code := rs.run(t, "--no-input"); code != 0 || r == nil || !r.Approved {
		t.Fatalf("approved image in a --tre store: exit %d, record %+v\n%s", code, r, errs)
	}
}
