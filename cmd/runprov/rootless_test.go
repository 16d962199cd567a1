package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/runprov/runprov/core/coretest"
)

// rootless is an ordinary user (rootlessUser, created with subordinate ids
// when missing) with a directory of its own holding a copy of this test
// binary, a busybox layout and a store with the image imported.
type rootless struct {
	t        *testing.T
	base     string // the user's directory
	exe      string // this test binary, runnable by the user
	store    string
	digest   string // the busybox image's manifest digest
	uid, gid int
}

func newRootless(t *testing.T) *rootless {
	t.Helper()
	requireRunc(t)
	for _, b := range []string{"newuidmap", "newgidmap", "unshare", "useradd"} {
		coretest.RequireBinary(t, b)
	}
	u, err := user.Lookup(rootlessUser)
	if err != nil {
		if out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/sh", rootlessUser).CombinedOutput(); err != nil {
			t.Fatalf("useradd: %v: %s", err, out)
		}
		if u, err = user.Lookup(rootlessUser); err != nil {
			t.Fatal(err)
		}
	}
	if data, _ := os.ReadFile("/etc/subuid"); !strings.Contains(string(data), rootlessUser+":") {
		out, err := exec.Command("usermod", "--add-subuids", "300000-365535", "--add-subgids", "300000-365535", rootlessUser).CombinedOutput()
		if err != nil {
			t.Fatalf("usermod: %v: %s", err, out)
		}
	}
	rl := &rootless{t: t}
	rl.uid, _ = strconv.Atoi(u.Uid)
	rl.gid, _ = strconv.Atoi(u.Gid)

	// A directory the user owns, reachable by it (t.TempDir is root's 0700).
	if rl.base, err = os.MkdirTemp("", "runprov-rootless-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("rm", "-rf", rl.base).Run() })
	os.Chmod(rl.base, 0o755)
	rl.exe = filepath.Join(rl.base, "runprov.test")
	if out, err := exec.Command("cp", os.Args[0], rl.exe).CombinedOutput(); err != nil {
		t.Fatalf("copy the test binary: %v: %s", err, out)
	}
	lay, d := busyboxLayout(t)
	rl.digest = d
	if out, err := exec.Command("cp", "-r", lay, filepath.Join(rl.base, "layout")).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	rl.chown(t, rl.base)
	rl.store = filepath.Join(rl.base, "store")
	rl.as(0, "init")
	rl.as(0, "image", "import", filepath.Join(rl.base, "layout"))
	return rl
}

// chown gives path (recursively) to the user.
func (rl *rootless) chown(t *testing.T, path string) {
	t.Helper()
	if out, err := exec.Command("chown", "-R", strconv.Itoa(rl.uid)+":"+strconv.Itoa(rl.gid), path).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
}

// command returns runprov args (with --store) run as the user.
func (rl *rootless) command(args ...string) *exec.Cmd {
	cmd := exec.Command(rl.exe, "-test.run=^TestRunHelperProcess$")
	argsJSON, _ := json.Marshal(append([]string{"--store", rl.store}, args...))
	cmd.Env = []string{"RUNPROV_HELPER_ARGS=" + string(argsJSON), "HOME=" + rl.base, "USER=" + rootlessUser, "PATH=" + os.Getenv("PATH")}
	if p := os.Getenv("RUNPROV_POLICY"); p != "" {
		cmd.Env = append(cmd.Env, "RUNPROV_POLICY="+p)
	}
	cmd.Dir = rl.base
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(rl.uid), Gid: uint32(rl.gid)}}
	return cmd
}

// as runs runprov args as the user, wants exit status want and returns
// stdout and stderr combined.
func (rl *rootless) as(want int, args ...string) string {
	rl.t.Helper()
	cmd := rl.command(args...)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != want {
		rl.t.Fatalf("runprov %s as %s: %v, want exit %d\n%s", strings.Join(args, " "), rootlessUser, err, want, out)
	}
	return string(out)
}
