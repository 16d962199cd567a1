package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/core/coretest"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/drivers/sqlite/sqlitetest"
	slurmplug "github.com/runprov/runprov/plugins/slurm"
)

// cliFunc runs runprov on a store and returns stdout, stderr, exit code.
type cliFunc func(t *testing.T, args ...string) (string, string, int)

// readOnlyFixture is a store with one real run, plus a Runfile and an image
// layout to try writing commands with.
type readOnlyFixture struct {
	rs      *runStore
	run     string
	runfile string
	layout  string
}

func newReadOnlyFixture(t *testing.T) *readOnlyFixture {
	t.Helper()
	requireRunc(t)
	rs := newRunStore(t, echoRunfile)
	r, errs, code := rs.run(t, "--no-input")
	if code != 0 || r == nil {
		t.Fatalf("run: exit %d\n%s", code, errs)
	}
	f := &readOnlyFixture{rs: rs, run: r.ID}
	f.layout, _ = busyboxLayout(t)
	f.runfile = filepath.Join(t.TempDir(), "Runfile")
	if err := os.WriteFile(f.runfile, []byte("FROM busybox@"+rs.image+"\nCMD [\"true\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// check runs the reading commands, which must work, and the writing ones,
// which must fail with 125 saying the store is read-only.
func (f *readOnlyFixture) check(t *testing.T, runprov cliFunc) {
	t.Helper()
	short := core.ShortRunID(f.run)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"log"}, f.rs.commit[:12]},
		{[]string{"--json", "runs"}, f.run},
		{[]string{"show", short}, f.run},
		{[]string{"--csv", "query", "SELECT id FROM runs"}, f.run},
		{[]string{"export", short, "--format", "json"}, f.run},
		{[]string{"report", short}, f.run},
		{[]string{"cat", f.rs.commit}, "LABEL purpose=test"},
		{[]string{"--csv", "image", "ls"}, f.rs.image},
		{[]string{"config", "require-approval"}, "false"},
		{[]string{"--csv", "config", "log"}, "require-approval"},
	} {
		out, errs, code := runprov(t, c.args...)
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("read-only store: runprov %s: exit %d, want 0 and %q on stdout\nstdout:\n%s\nstderr:\n%s", strings.Join(c.args, " "), code, c.want, out, errs)
		}
	}
	for _, args := range [][]string{
		{"add", f.runfile},
		{"run", f.rs.commit, "--no-input"},
		{"image", "import", f.layout},
		{"config", "require-approval", "true"},
	} {
		_, errs, code := runprov(t, args...)
		if code != exitRunprov || !strings.Contains(errs, "store is read-only") {
			t.Errorf("read-only store: runprov %s: exit %d, want %d saying the store is read-only\n%s", strings.Join(args, " "), code, exitRunprov, errs)
		}
	}
}

// roBindMount mounts dir read-only at a new directory (root only).
func roBindMount(t *testing.T, dir string) string {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "--bind", dir, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount --bind: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	if out, err := exec.Command("mount", "-o", "remount,ro,bind", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v: %s", err, out)
	}
	return mnt
}

// TestReadOnlyStoreBindMount: a store on a read-only mount, which even
// root cannot write, is read by the reading commands; the writing ones
// fail with 125; a schema older than the binary is not migrated.
func TestReadOnlyStoreBindMount(t *testing.T) {
	coretest.RequireBinary(t, "mount")
	f := newReadOnlyFixture(t)
	ro := roBindMount(t, f.rs.dir)
	f.check(t, func(t *testing.T, args ...string) (string, string, int) { return cli(t, ro, args...) })
	for _, name := range []string{"runprov.db-wal", "runprov.db-shm"} {
		if _, err := os.Stat(filepath.Join(f.rs.dir, name)); err == nil {
			t.Errorf("%s exists after reading the read-only store", name)
		}
	}

	// An older schema: the store's owner must upgrade it.
	old := filepath.Join(t.TempDir(), "old")
	if out, err := exec.Command("cp", "-a", f.rs.dir, old).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	db := storeDB(t, old)
	if _, err := db.Exec("PRAGMA user_version = 4"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, errs, code := cli(t, roBindMount(t, old), "log")
	if code != exitRunprov || !strings.Contains(errs, "runprov init") || !strings.Contains(errs, "owner") {
		t.Errorf("old schema on a read-only store: exit %d, want %d naming runprov init by its owner\n%s", code, exitRunprov, errs)
	}
	db = storeDB(t, old)
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != 4 {
		t.Errorf("old read-only store: schema version %d (%v) after log, want 4 (no migration)", v, err)
	}
}

// TestReadOnlyStoreOrdinaryUser: a copy of a store without write
// permission (chmod -R a-w), read by an ordinary user.
func TestReadOnlyStoreOrdinaryUser(t *testing.T) {
	coretest.RequireBinary(t, "useradd")
	f := newReadOnlyFixture(t)
	u, err := user.Lookup(rootlessUser)
	if err != nil {
		if out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/sh", rootlessUser).CombinedOutput(); err != nil {
			t.Fatalf("useradd: %v: %s", err, out)
		}
		if u, err = user.Lookup(rootlessUser); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// A directory the user can reach (t.TempDir is root's 0700).
	base, err := os.MkdirTemp("", "runprov-readonly-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("rm", "-rf", base).Run() })
	os.Chmod(base, 0o755)
	exe := filepath.Join(base, "runprov.test")
	store := filepath.Join(base, "store")
	for _, c := range [][]string{
		{"cp", os.Args[0], exe},
		{"cp", "-a", f.rs.dir, store},
		{"cp", "-r", f.layout, filepath.Join(base, "layout")},
		{"cp", f.runfile, filepath.Join(base, "Runfile")},
		{"chown", "-R", u.Uid + ":" + u.Gid, base},
		{"chmod", "-R", "a-w", store},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(c, " "), err, out)
		}
	}
	f.layout, f.runfile = filepath.Join(base, "layout"), filepath.Join(base, "Runfile")
	f.check(t, func(t *testing.T, args ...string) (string, string, int) {
		cmd := exec.Command(exe, "-test.run=^TestRunHelperProcess$")
		argsJSON, _ := json.Marshal(append([]string{"--store", store}, args...))
		cmd.Env = []string{"RUNPROV_HELPER_ARGS=" + string(argsJSON), "HOME=" + base, "USER=" + rootlessUser, "PATH=" + os.Getenv("PATH")}
		cmd.Dir = base
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Run()
		if cmd.ProcessState == nil {
			t.Fatalf("runprov %s as %s did not start: %s", strings.Join(args, " "), rootlessUser, errb.String())
		}
		return out.String(), errb.String(), cmd.ProcessState.ExitCode()
	})
	entries, _ := os.ReadDir(store)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "runprov.db-") {
			t.Errorf("%s appeared in the read-only copy", e.Name())
		}
	}
}

// TestReadOnlyStoreSkipsSlurmIngest: a finished Slurm record waiting in a
// read-only store is not taken in (which would write), and reading does
// not fail; the writable store takes it in as usual.
func TestReadOnlyStoreSkipsSlurmIngest(t *testing.T) {
	coretest.RequireRoot(t)
	coretest.RequireBinary(t, "mount")
	ctx := context.Background()
	store := newCLIStore(t)
	st, err := sqlite.Open(ctx, store, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := sqlitetest.SyntheticRun(0, 0)
	finished := r
	r.Status, r.ExitCode, r.Ended, r.Executor = core.RunQueued, nil, time.Time{}, "slurm"
	r.Slurm = &core.SlurmJob{JobID: "4242"}
	if err := st.CreateRun(ctx, &r); err != nil {
		t.Fatal(err)
	}
	st.Close()
	finished.Executor = "slurm"
	runDir := core.Layout{Root: store}.Run(r.ID)
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := slurmplug.WriteRecord(runDir, &slurmplug.Record{Run: finished}); err != nil {
		t.Fatal(err)
	}

	status := func(dir string) (core.RunStatus, string) {
		t.Helper()
		out, errs := mustCLI(t, 0, dir, "--json", "runs")
		var runs []core.Run
		if err := json.Unmarshal([]byte(out), &runs); err != nil || len(runs) != 1 {
			t.Fatalf("runs --json: %v\n%s", err, out)
		}
		return runs[0].Status, errs
	}
	if got, errs := status(roBindMount(t, store)); got != core.RunQueued || strings.Contains(errs, "level=WARN") {
		t.Errorf("read-only store: run %s, want it still queued and no warning\n%s", got, errs)
	}
	if got, errs := status(store); got != finished.Status {
		t.Errorf("writable store: run %s, want the record taken in (%s)\n%s", got, finished.Status, errs)
	}
}
