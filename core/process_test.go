package core

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestProcessStart(t *testing.T) {
	self := ProcessStart(os.Getpid())
	if self == "" || !strings.Contains(self, ":") {
		t.Fatalf("ProcessStart(self) = %q", self)
	}
	if again := ProcessStart(os.Getpid()); again != self {
		t.Fatalf("ProcessStart changed: %q then %q", self, again)
	}
	// Start times count clock ticks (10 ms): let one pass.
	time.Sleep(50 * time.Millisecond)
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child := ProcessStart(cmd.Process.Pid)
	cmd.Process.Kill()
	cmd.Wait()
	if child == "" || child == self {
		t.Fatalf("child %q, self %q: want a different, known start", child, self)
	}
	if gone := ProcessStart(cmd.Process.Pid); gone != "" && gone == child {
		t.Fatalf("a reaped process still reads as %q", gone)
	}
}
