package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/runtime"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/drivers/sqlite/sqlitetest"
)

// TestRunKilledScratchRemoved: a runprov killed with SIGKILL while its
// container has written to scratch leaves the scratch behind; the next
// command marks the run aborted and deletes it, and fsck then finds
// nothing left.
func TestRunKilledScratchRemoved(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, abortRunfile)
	cmd, id := startRunUntil(t, rs, "wrote-scratch")
	scratch := filepath.Join(rs.dir, "runs", id, "scratch")
	if _, err := os.Stat(filepath.Join(scratch, "0", "f")); err != nil {
		t.Fatalf("the running run's scratch file: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := os.Stat(filepath.Join(scratch, "0", "f")); err != nil {
		t.Fatalf("SIGKILL should leave the scratch for the next command to remove: %v", err)
	}

	out, _ := mustCLI(t, 0, rs.dir, "query", "--csv", "SELECT id, status FROM runs")
	if !strings.Contains(out, id+",aborted") {
		t.Errorf("runs: %s, want %s aborted", out, id)
	}
	if _, err := os.Stat(scratch); !os.IsNotExist(err) {
		t.Errorf("the killed run's scratch is left after the next command: %v", err)
	}
	mustCLI(t, 0, rs.dir, "fsck")
}

// TestRunKilledScratchRemovedRootless is TestRunKilledScratchRemoved as an
// ordinary user: the scratch file belongs to a subordinate id, which the
// user can remove only through the run's user namespace.
func TestRunKilledScratchRemovedRootless(t *testing.T) {
	rl := newRootless(t)
	rf := filepath.Join(rl.base, "Runfile.scratch")
	os.WriteFile(rf, []byte(strings.ReplaceAll(abortRunfile, "IMAGE", "busybox@"+rl.digest)+"USER 1000:1000\n"), 0o644)
	rl.chown(t, rf)
	commit := strings.TrimSpace(rl.as(0, "-q", "add", rf))
	cmd := rl.command("run", commit)
	var stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(stderr.String(), "wrote-scratch") })
	runs, _ := filepath.Glob(filepath.Join(rl.store, "runs", "*"))
	if len(runs) != 1 {
		t.Fatalf("runs: %v", runs)
	}
	id := filepath.Base(runs[0])
	scratch := filepath.Join(runs[0], "scratch")
	fi, err := os.Stat(filepath.Join(scratch, "0", "f"))
	if err != nil {
		t.Fatalf("the running run's scratch file: %v", err)
	}
	if ownerUID(fi) == rl.uid {
		t.Fatalf("the scratch file belongs to the user %d, not to a subordinate id: the test proves nothing", rl.uid)
	}
	cmd.Process.Kill()
	cmd.Wait()

	out := rl.as(0, "query", "--csv", "SELECT id, status FROM runs")
	if !strings.Contains(out, id+",aborted") {
		t.Errorf("runs: %s, want %s aborted", out, id)
	}
	if _, err := os.Stat(scratch); !os.IsNotExist(err) {
		t.Errorf("the killed rootless run's scratch is left after the next command: %v", err)
	}
	rl.as(0, "fsck")
}

// TestFsckReportsLeftScratch: fsck names a finished run that still has a
// scratch directory, and its path (exit 125); a running run's scratch is
// its own business.
func TestFsckReportsLeftScratch(t *testing.T) {
	store := newCLIStore(t)
	mustCLI(t, 0, store, "fsck")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, store, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	finished := sqlitetest.SyntheticRun(0, 0)
	finished.EnvironmentSHA256, finished.SystemKernelSHA256 = "", ""
	running := sqlitetest.SyntheticRun(1, 0)
	running.EnvironmentSHA256, running.SystemKernelSHA256 = "", ""
	running.Status, running.ExitCode, running.Ended = core.RunRunning, nil, time.Time{}
	running.Hostname, _ = os.Hostname() // owned by this live process
	for _, r := range []*core.Run{&finished, &running} {
		if err := st.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(store, "runs", r.ID, "scratch", "0"), 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(store, "runs", r.ID, "scratch", "0", "copy.csv"), []byte("secret\n"), 0o600)
	}
	st.Close()

	out, _ := mustCLI(t, exitRunprov, store, "fsck")
	left := filepath.Join(store, "runs", finished.ID, "scratch")
	if !strings.Contains(out, "run "+finished.ID+": ") || !strings.Contains(out, left) {
		t.Errorf("fsck does not name the finished run %s and its scratch %s:\n%s", finished.ID, left, out)
	}
	if strings.Contains(out, running.ID) {
		t.Errorf("fsck reports the running run's scratch:\n%s", out)
	}
	os.RemoveAll(left)
	mustCLI(t, 0, store, "fsck")
}

// startRunUntil starts runprov run of rs's commit in a child process and
// waits until its one container runs and has printed marker; it returns
// the process, for the test to kill, and the run id.
func startRunUntil(t *testing.T, rs *runStore, marker string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd, stderr := helperProcess(t, rs.dir, append([]string{"run", rs.commit}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rc := &runtime.Runc{Root: filepath.Join(rs.dir, "runtime", "runc")}
	var id string
	waitFor(t, 30*time.Second, func() bool {
		cs, _ := rc.List(context.Background())
		if len(cs) == 1 && cs[0].Status == "running" && strings.Contains(stderr.String(), marker) {
			id = filepath.Base(cs[0].Bundle)
			return true
		}
		return false
	})
	t.Cleanup(func() { cleanupContainers(t, rs.dir) }) // what a failing test leaves
	return cmd, id
}
