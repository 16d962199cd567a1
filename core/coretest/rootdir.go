package coretest

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// RootOwnedDir returns a new empty directory, mode 0755, such that it and
// every directory above it are owned by root and writable by nobody else
// (t.TempDir lives under the world-writable /tmp). It needs root; it is
// removed when the test ends.
func RootOwnedDir(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	for _, base := range []string{"/run", "/var/lib"} {
		if !rootOnly(base) {
			continue
		}
		dir, err := os.MkdirTemp(base, "runprov-test-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	Unavailable(t, "no root-owned directory that only root may write (/run or /var/lib)")
	return ""
}

// rootOnly reports whether dir and every directory above it are root's and
// not writable by group or others.
func rootOnly(dir string) bool {
	for {
		fi, err := os.Stat(dir)
		if err != nil {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
			return false
		}
		if dir == "/" {
			return true
		}
		dir = filepath.Dir(dir)
	}
}
