package main

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
)

// outputRunfile declares an output; outputThen is a command that writes
// an output file, says so, then does then.
const outputRunfile = `FROM IMAGE
OUTPUT /out
CMD ["/bin/true"]
`

func outputThen(then string) []string {
	return []string{"--", "/bin/sh", "-c", "echo partial > /out/part.txt && echo wrote-output && " + then}
}

// partialSum is the sha256 of what outputRunfile writes.
func partialSum() string {
	s := sha256.Sum256([]byte("partial\n"))
	return hex.EncodeToString(s[:])
}

// storedOutputs returns path=sha256 of the output rows of run id.
func storedOutputs(t *testing.T, store, id string) string {
	t.Helper()
	out, _ := mustCLI(t, 0, store, "query", "--csv", "SELECT path || '=' || sha256 FROM run_files WHERE kind = 'output' AND run_id = '"+id+"' ORDER BY path")
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), strings.SplitN(out, "\n", 2)[0]))
}

// TestRunFailedRecordsOutputs: a run that wrote an output and then failed
// (exit 3) or was killed at its timeout records that output, hashed.
func TestRunFailedRecordsOutputs(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, outputRunfile)
	for _, c := range []struct {
		name string
		args []string
		code int
	}{
		{"exit 3", outputThen("exit 3"), 3},
		{"timeout", append([]string{"--timeout", "2s"}, outputThen("sleep 60")...), 137},
	} {
		r, errs, code := rs.run(t, c.args...)
		if code != c.code || r == nil || r.Status != core.RunFailed {
			t.Fatalf("%s: exit %d, record %+v\n%s", c.name, code, r, errs)
		}
		if len(r.Outputs) != 1 || r.Outputs[0].Path != "part.txt" || r.Outputs[0].SHA256 != partialSum() {
			t.Errorf("%s: outputs %+v, want part.txt with sha256 %s", c.name, r.Outputs, partialSum())
		}
		if got, want := storedOutputs(t, rs.dir, r.ID), "part.txt="+partialSum(); got != want {
			t.Errorf("%s: stored outputs %q, want %q", c.name, got, want)
		}
		if !strings.Contains(errs, "outputs: 1 files") {
			t.Errorf("%s: stderr does not count the output:\n%s", c.name, errs)
		}
	}
}

// TestRunAbortedRecordsOutputs: a run aborted by SIGTERM after writing an
// output records that output, hashed.
func TestRunAbortedRecordsOutputs(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, outputRunfile)
	cmd, stderr := helperProcess(t, rs.dir, append([]string{"run", rs.commit}, outputThen("sleep 60")...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanupContainers(t, rs.dir) }) // what a failing test leaves
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(stderr.String(), "wrote-output") })
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 143 {
		t.Fatalf("exit %d, want 143\n%s", code, stderr)
	}
	out, _ := mustCLI(t, 0, rs.dir, "query", "--csv", "SELECT id, status FROM runs")
	id, status, _ := strings.Cut(strings.TrimSpace(strings.SplitN(out, "\n", 2)[1]), ",")
	if status != "aborted" {
		t.Fatalf("runs: %s", out)
	}
	if got, want := storedOutputs(t, rs.dir, id), "part.txt="+partialSum(); got != want {
		t.Errorf("stored outputs of the aborted run %q, want %q\n%s", got, want, stderr)
	}
}
