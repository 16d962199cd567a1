// Package coretest holds the few helpers every test suite of runprov shares:
// how a test that needs root or a host binary behaves (skip with a reason on
// a developer's machine, fail in CI, where the real sandbox must run).
package coretest

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true, as .ci/run sets).
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable skips the test with reason outside CI and fails it in CI.
func Unavailable(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s (CI=true: this test must run; make test installs its dependencies)", reason)
	}
	t.Skip(reason)
}

// RequireBinary returns the path of name on PATH, or calls Unavailable.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, name+" is not installed")
	}
	return p
}

// RequireRoot calls Unavailable unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root")
	}
}

// TarEntries calls fn with the name and content of every entry of tarball,
// in order, and returns how many there were; a malformed tar fails t.
func TarEntries(t testing.TB, tarball []byte, fn func(name string, data []byte)) int {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(tarball))
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("tarball entry %d: %v", n, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("tarball entry %s: %v", h.Name, err)
		}
		n++
		fn(h.Name, data)
	}
}

// Git runs the git CLI in dir as a fixed user ("Bob", with no system or
// global configuration and main as the default branch) and returns its
// trimmed stdout; it fails the test when git fails, and calls Unavailable
// when git is not installed.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	bin := RequireBinary(t, "git")
	cmd := exec.Command(bin, append([]string{"-c", "user.name=Bob", "-c", "user.email=bob@example.org", "-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(out.String())
}
