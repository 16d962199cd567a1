package core

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// ProcessStart names a process so that a reused pid is not taken for it:
// the boot id and the process's start time in clock ticks since boot, as
// Linux gives them in /proc. "" when they cannot be read.
func ProcessStart(pid int) string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields after it start after the last ')'. starttime is field 22.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(string(stat[i+1:]))
	const starttime = 22 - 3 // fields[0] is field 3 (state)
	if len(fields) <= starttime {
		return ""
	}
	return strings.TrimSpace(string(boot)) + ":" + fields[starttime]
}

// ProcessAlive reports whether a process with this pid exists on this host
// (also when it belongs to another user).
func ProcessAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
