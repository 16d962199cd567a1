package core

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MkdirTemp creates a private directory in tmpDir (made if missing) whose
// name starts with this process's pid, so that CleanStaleTemp can tell
// whether its owner still runs.
func MkdirTemp(tmpDir, what string) (string, error) {
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return "", err
	}
	return os.MkdirTemp(tmpDir, fmt.Sprintf("%d-%s-", os.Getpid(), what))
}

// CleanStaleTemp removes the entries of tmpDir made by MkdirTemp in processes
// that no longer exist (a runprov killed with SIGKILL leaves them behind),
// each with remove (os.RemoveAll, or one that copes with read-only
// directories). Entries of live processes, and names it does not recognise,
// are kept. It returns how many it removed.
func CleanStaleTemp(tmpDir string, remove func(string) error) int {
	entries, err := os.ReadDir(tmpDir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		pidText, _, ok := strings.Cut(e.Name(), "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if !ProcessAlive(pid) && remove(filepath.Join(tmpDir, e.Name())) == nil {
			n++
		}
	}
	return n
}
