package main

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
)

// sandboxCheck prints key=value lines about the sandbox it runs in.
const sandboxCheck = `
echo "uid=$(id -u)"
echo "gid=$(id -g)"
echo "ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
if echo x | nc -w 2 127.0.0.1 "$PORT" >/dev/null 2>&1; then echo tcp=connected; else echo tcp=failed; fi
touch /data/new 2>/dev/null && echo input=writable || echo input=readonly
touch /x 2>/dev/null && echo root=writable || echo root=readonly
touch /etc/x 2>/dev/null && echo etc=writable || echo etc=readonly
mkdir /newdir 2>/dev/null && echo mkdir=allowed || echo mkdir=denied
echo "capeff=$(grep CapEff /proc/self/status | cut -f2)"
echo "capbnd=$(grep CapBnd /proc/self/status | cut -f2)"
echo "nnp=$(grep NoNewPrivs /proc/self/status | cut -f2)"
echo "seccomp=$(grep '^Seccomp:' /proc/self/status | cut -f2)"
unshare -U true 2>/dev/null && echo unshare=allowed || echo unshare=denied
mount -t tmpfs none /scratch 2>/dev/null && echo mount=allowed || echo mount=denied
linux32 true 2>/dev/null && echo personality32=allowed || echo personality32=denied
linux32 -R true 2>/dev/null && echo personality_norandomize=allowed || echo personality_norandomize=denied
echo "timer_list=$(wc -c < /proc/timer_list)"
echo "procsys=$(grep ' /proc/sys ' /proc/self/mountinfo | cut -d' ' -f6 | cut -d, -f1)"
echo "hostname=$(cat /proc/sys/kernel/hostname)"
echo secret > /scratch/f && echo scratch=writable
touch /tmp/t 2>/dev/null && echo tmp=writable || echo tmp=readonly
echo "tmpdir=$TMPDIR"
echo result > /out/result.txt
wc -l < /data/input.csv > /out/lines.txt
mkdir /out/sub && ln -s ../result.txt /out/sub/link
echo done=yes
`

const sandboxRunfile = `FROM IMAGE
ARG PORT
USER 1234:1234
INPUT data /data
OUTPUT /out
SCRATCH /scratch
ENV PORT=${PORT}
CMD ["/bin/sh", "/data/check.sh"]
`

func parseKV(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// hostListener listens on the host's 127.0.0.1 until the test ends and
// counts the connections it accepts: a sandboxed run must make none.
func hostListener(t *testing.T) (port int, accepted *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, accepted
}

// TestSandbox checks, inside a real runc container, every property of the
// sandbox runprov run promises, then the run's record and what it left.
func TestSandbox(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, sandboxRunfile)

	port, accepted := hostListener(t)

	in := filepath.Join(t.TempDir(), "in")
	os.Mkdir(in, 0o755)
	os.WriteFile(filepath.Join(in, "check.sh"), []byte(sandboxCheck), 0o644)
	os.WriteFile(filepath.Join(in, "input.csv"), []byte("a,b\n1,2\n3,4\n"), 0o644)
	os.Symlink("input.csv", filepath.Join(in, "link.csv"))

	r, errs, code := rs.run(t, "--input", "data="+in, "--arg", fmt.Sprintf("PORT=%d", port))
	if code != 0 || r == nil {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	got := parseKV(errs) // --json: the container's stdout is on stderr
	want := map[string]string{
		"uid": "1234", "gid": "1234", "ifaces": "lo", "tcp": "failed",
		"input": "readonly", "root": "readonly", "etc": "readonly", "mkdir": "denied",
		"capeff": "0000000000000000", "capbnd": "0000000000000000", "nnp": "1", "seccomp": "2",
		"unshare": "denied", "mount": "denied",
		// Allowed to a process without capabilities, refused by the filter
		// only: personality(PER_LINUX32|ADDR_NO_RANDOMIZE). Docker allows
		// personality(PER_LINUX32).
		"personality32": "allowed", "personality_norandomize": "denied",
		"timer_list": "0", "procsys": "ro", "hostname": "runprov",
		"scratch": "writable", "tmp": "writable", "tmpdir": "/scratch", "done": "yes",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("inside the container %s=%q, want %q", k, got[k], v)
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the host listener on 127.0.0.1 accepted %d connections from the container", n)
	}
	if _, err := os.Stat(filepath.Join(in, "new")); err == nil {
		t.Errorf("the container wrote into its input")
	}

	runDir := filepath.Join(rs.dir, "runs", r.ID)
	if _, err := os.Stat(filepath.Join(runDir, "scratch")); !os.IsNotExist(err) {
		t.Errorf("scratch is still there after the run: %v", err)
	}
	if _, err := os.Stat(filepath.Join("/run/runprov", r.ID)); !os.IsNotExist(err) {
		t.Errorf("the run's overlay root is still there: %v", err)
	}
	// The shared rootfs gained nothing (mount points went to the overlay).
	rootfs := filepath.Join(rs.dir, "rootfs", strings.TrimPrefix(rs.image, "sha256:"))
	for _, d := range []string{"proc", "data", "out", "scratch", "tmp", "dev"} {
		if _, err := os.Lstat(filepath.Join(rootfs, d)); err == nil {
			t.Errorf("the shared rootfs gained /%s", d)
		}
	}

	// Output manifest: hashes match the files, links are links, and the
	// files are the runprov user's again.
	outDir := filepath.Join(runDir, "outputs")
	files := map[string]core.FileRecord{}
	for _, f := range r.Outputs {
		files[f.Path] = f
	}
	for _, name := range []string{"result.txt", "lines.txt"} {
		data, err := os.ReadFile(filepath.Join(outDir, name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if f := files[name]; f.SHA256 != hex.EncodeToString(sum[:]) || f.Size != int64(len(data)) || f.Name != "/out" {
			t.Errorf("output %s recorded as %+v, file sha256 %x", name, f, sum)
		}
		if fi, err := os.Stat(filepath.Join(outDir, name)); err == nil && ownerUID(fi) != os.Getuid() {
			t.Errorf("output %s belongs to uid %d after the run", name, ownerUID(fi))
		}
	}
	if data, _ := os.ReadFile(filepath.Join(outDir, "lines.txt")); strings.TrimSpace(string(data)) != "3" {
		t.Errorf("lines.txt = %q", data)
	}
	if f := files["sub/link"]; f.Link != "../result.txt" || f.SHA256 != "" {
		t.Errorf("symlink output recorded as %+v", f)
	}
	inputs := map[string]core.FileRecord{}
	for _, f := range r.Inputs {
		inputs[f.Path] = f
	}
	csvSum := sha256.Sum256([]byte("a,b\n1,2\n3,4\n"))
	if f := inputs["input.csv"]; f.SHA256 != hex.EncodeToString(csvSum[:]) || f.Name != "data" || f.Size != 12 {
		t.Errorf("input manifest: %+v", r.Inputs)
	}
	if f := inputs["link.csv"]; f.Link != "input.csv" {
		t.Errorf("input symlink: %+v", f)
	}
	if r.User != "1234:1234" {
		t.Errorf("user %q", r.User)
	}
	kinds := map[string]bool{}
	for _, m := range r.Mounts {
		kinds[m.Kind] = true
		if m.Kind == core.MountInput && !m.ReadOnly {
			t.Errorf("input mount not read-only: %+v", m)
		}
	}
	for _, k := range []string{core.MountInput, core.MountOutput, core.MountScratch, core.MountTmp} {
		if !kinds[k] {
			t.Errorf("no %s mount recorded: %+v", k, r.Mounts)
		}
	}
}

func ownerUID(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// TestSandboxSystemKernel: the snapshot's kernel release is uname -r's,
// and two runs on this host share one snapshot row.
func TestSandboxSystemKernel(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, echoRunfile)
	r1, errs, code := rs.run(t, "--no-input")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	r2, errs, code := rs.run(t, "--no-input")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	if r1.SystemKernelSHA256 == "" || r1.SystemKernelSHA256 != r2.SystemKernelSHA256 {
		t.Errorf("two runs on one host: snapshots %q and %q", r1.SystemKernelSHA256, r2.SystemKernelSHA256)
	}
	if r2.Drift != "" {
		t.Errorf("drift between two runs on one host: %q", r2.Drift)
	}
	uname, err := exec.Command("uname", "-r").Output()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := mustCLI(t, 0, rs.dir, "query", "--csv", "SELECT kernel_release, (SELECT count(*) FROM system_kernels) FROM system_kernels")
	if want := strings.TrimSpace(string(uname)) + ",1"; !strings.Contains(out, want) {
		t.Errorf("system_kernels: %q, want a row %q", out, want)
	}
}

// TestSandboxDrift: the second run of a commit whose first run saw another
// host prints the drift summary on stderr and stores it in runs.drift. The
// other host is made by storing a changed copy of the first run's snapshot
// (another kernel release and, when there are sysctls, one changed value)
// under its own hash and pointing the first run at it.
func TestSandboxDrift(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, echoRunfile)
	r1, errs, code := rs.run(t, "--no-input")
	if code != 0 || r1 == nil || r1.SystemKernelSHA256 == "" {
		t.Fatalf("first run: exit %d, record %+v\n%s", code, r1, errs)
	}
	if r1.Drift != "" || strings.Contains(errs, "this host changed") {
		t.Errorf("drift on the commit's first run: %q\n%s", r1.Drift, errs)
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(rs.dir, "runprov.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var snap string
	if err := db.QueryRow(`SELECT snapshot FROM system_kernels WHERE sha256 = ?`, r1.SystemKernelSHA256).Scan(&snap); err != nil {
		t.Fatal(err)
	}
	var k core.SystemKernel
	if err := json.Unmarshal([]byte(snap), &k); err != nil {
		t.Fatal(err)
	}
	const oldRelease = "0.0.0-runprov-drift-test"
	wantParts := []string{"kernel " + oldRelease + " -> " + k.KernelRelease}
	k.KernelRelease = oldRelease
	for name, v := range k.Sysctls {
		k.Sysctls = maps.Clone(k.Sysctls)
		k.Sysctls[name] = v + "-before"
		wantParts = append(wantParts, "1 sysctl")
		break
	}
	old := k.CanonicalJSON()
	sum := sha256.Sum256(old)
	oldSHA := hex.EncodeToString(sum[:])
	if _, err := db.Exec(`INSERT INTO system_kernels(sha256, kernel_release, kernel_version, os_release, arch, cpu_model,
			cpu_count, mem_total_bytes, runtime_name, runtime_version, snapshot, first_seen)
		SELECT ?, ?, kernel_version, os_release, arch, cpu_model, cpu_count, mem_total_bytes, runtime_name,
			runtime_version, ?, first_seen FROM system_kernels WHERE sha256 = ?`,
		oldSHA, oldRelease, string(old), r1.SystemKernelSHA256); err != nil {
		t.Fatal(err)
	}
	if res, err := db.Exec(`UPDATE runs SET system_kernel_sha256 = ? WHERE id = ?`, oldSHA, r1.ID); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("pointed %d runs at the changed snapshot, want 1", n)
	}
	db.Close()

	r2, errs, code := rs.run(t, "--no-input")
	if code != 0 || r2 == nil {
		t.Fatalf("second run: exit %d\n%s", code, errs)
	}
	want := strings.Join(wantParts, ", ")
	if r2.Drift != want {
		t.Errorf("second run's drift %q, want %q", r2.Drift, want)
	}
	if line := "runprov: this host changed since the commit's last run: " + want + "\n"; !strings.Contains(errs, line) {
		t.Errorf("stderr lacks %q:\n%s", line, errs)
	}
	out, _ := mustCLI(t, 0, rs.dir, "--json", "query", "SELECT drift FROM runs WHERE id = '"+r2.ID+"'")
	var rows []struct{ Drift string }
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 || rows[0].Drift != want {
		t.Errorf("runs.drift of the second run: %s (%v), want %q", out, err, want)
	}
}

// rootlessUser is the ordinary user the rootless test runs runprov as; it
// is created (with subordinate ids) when missing.
const rootlessUser = "runprovtest"

// TestSandboxRootless runs runprov as an ordinary user: rootless runc with
// the user's subordinate ids. The process is still the Runfile's USER, and
// what it wrote is the user's afterwards.
func TestSandboxRootless(t *testing.T) {
	rl := newRootless(t)
	base, uid, d, as := rl.base, rl.uid, rl.digest, rl.as
	in := filepath.Join(base, "in")
	os.Mkdir(in, 0o755)
	os.WriteFile(filepath.Join(in, "x.csv"), []byte("1\n2\n"), 0o644)
	// A listener on the host's loopback that the container must not reach.
	port, accepted := hostListener(t)
	script := "echo uid=$(id -u); echo ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '); " +
		"touch /safe_data/y 2>/dev/null || echo input=readonly; " +
		"touch /x 2>/dev/null && echo root=writable || echo root=readonly; " +
		"touch /etc/x 2>/dev/null && echo etc=writable || echo etc=readonly; " +
		fmt.Sprintf("if echo x | nc -w 2 127.0.0.1 %d >/dev/null 2>&1; then echo tcp=connected; else echo tcp=failed; fi; ", port) +
		"wc -l < /safe_data/x.csv > /safe_outputs/n.txt; echo s > /scratch/s; echo capeff=$(grep CapEff /proc/self/status | cut -f2)"
	os.WriteFile(filepath.Join(base, "Runfile"), []byte("FROM busybox@"+d+"\n"+`CMD ["/bin/sh", "-c", "`+script+`"]`+"\n"), 0o644)
	rl.chown(t, base)
	store := rl.store
	commit := strings.TrimSpace(as(0, "-q", "add", filepath.Join(base, "Runfile")))
	out := as(0, "run", commit, "--input", "data="+in)
	got := parseKV(out)
	for k, v := range map[string]string{"uid": "65534", "ifaces": "lo", "input": "readonly", "capeff": "0000000000000000",
		"root": "readonly", "etc": "readonly", "tcp": "failed"} {
		if got[k] != v {
			t.Errorf("rootless: %s=%q, want %q\n%s", k, got[k], v, out)
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("rootless: the host listener on 127.0.0.1 accepted %d connections from the container", n)
	}
	runs, _ := filepath.Glob(filepath.Join(store, "runs", "*"))
	if len(runs) != 1 {
		t.Fatalf("runs: %v", runs)
	}
	fi, err := os.Stat(filepath.Join(runs[0], "outputs", "n.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if ownerUID(fi) != uid {
		t.Errorf("the output belongs to uid %d, not the user %d", ownerUID(fi), uid)
	}
	if _, err := os.Stat(filepath.Join(runs[0], "scratch")); !os.IsNotExist(err) {
		t.Errorf("scratch left: %v", err)
	}
	var r core.Run
	data, _ := os.ReadFile(filepath.Join(runs[0], "run.json"))
	if err := json.Unmarshal(data, &r); err != nil || r.Status != core.RunSucceeded || len(r.Outputs) != 1 {
		t.Errorf("run.json: %v %s", err, data)
	}

	// Without root there is no delegated cgroup: cgroup LIMITs cannot be
	// applied, the run still goes ahead and its record says so.
	limited := filepath.Join(base, "Runfile.limited")
	os.WriteFile(limited, []byte("FROM busybox@"+d+"\nLIMIT memory=64M pids=32 timeout=1m\nCMD [\"/bin/true\"]\n"), 0o644)
	rl.chown(t, limited)
	commit = strings.TrimSpace(as(0, "-q", "add", "--path", "limited", limited))
	var lr core.Run
	out = as(0, "--json", "run", commit, "--no-input")
	// stdout (the record) and stderr (progress, notes) come combined.
	if i := strings.Index(out, "\n{\n"); i < 0 || json.NewDecoder(strings.NewReader(out[i:])).Decode(&lr) != nil {
		t.Fatalf("rootless limited run --json: %s", out)
	}
	if lr.Status != core.RunSucceeded || lr.Limits.MemoryBytes != 64<<20 || lr.Limits.Pids != 32 || lr.Limits.Timeout != time.Minute {
		t.Errorf("rootless limited run: status %s, limits %+v", lr.Status, lr.Limits)
	}
	if !strings.Contains(lr.Limits.Note, "not enforced") {
		t.Errorf("rootless limited run: limits note %q, want it to say the cgroup limits were not enforced", lr.Limits.Note)
	}
}
