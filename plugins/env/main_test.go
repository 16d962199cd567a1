package env

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/runprov/runprov/core/coretest"
)

// TestMain doubles as the helper TestSnapshotSameForOrdinaryUser runs as
// another user: with RUNPROV_ENV_PRINT_SHA set it prints the snapshot hash.
func TestMain(m *testing.M) {
	if os.Getenv("RUNPROV_ENV_PRINT_SHA") != "" {
		k := CollectSystemKernel(context.Background(), RuntimeInfo{Name: "runc", Version: "1.1.12"})
		fmt.Println(k.SHA256())
		fmt.Fprintln(os.Stderr, len(k.Sysctls), "sysctls; errors:", k.Errors)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSnapshotSameForOrdinaryUser: a root run and a rootless run on one
// host share one snapshot, since only world-readable sysctls are kept.
func TestSnapshotSameForOrdinaryUser(t *testing.T) {
	coretest.RequireRoot(t)
	dir, err := os.MkdirTemp("", "runprov-env-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "env.test")
	if err := copyFile(exe, bin); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "RUNPROV_ENV_PRINT_SHA=1")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("collect as uid 65534: %v: %s", err, stderr.String())
	}
	root := CollectSystemKernel(context.Background(), RuntimeInfo{Name: "runc", Version: "1.1.12"})
	if got := strings.TrimSpace(string(out)); got != root.SHA256() {
		t.Errorf("uid 65534 got snapshot %s (%s), root %s (%d sysctls, errors %v)",
			got, strings.TrimSpace(stderr.String()), root.SHA256(), len(root.Sysctls), root.Errors)
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
