package main

import (
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
)

// TestLogs prints a run's stdout and stderr, one of them, and follows a
// running run to its end; show, diff, export and reproduce take last and
// last~N as logs does.
func TestLogs(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, "FROM IMAGE\nARG PAUSE=0\nENV PAUSE=${PAUSE}\nSCRATCH /scratch\nCMD [\"/bin/sh\", \"-c\", \"echo out1; echo err1 >&2; sleep $PAUSE; echo out2\"]\n")
	mustCLI(t, 0, rs.dir, "run", rs.commit)
	out, errs := mustCLI(t, 0, rs.dir, "logs", "last")
	if out != "out1\nout2\n" || errs != "err1\n" {
		t.Errorf("logs last: stdout %q, stderr %q", out, errs)
	}
	if out, _ := mustCLI(t, 0, rs.dir, "logs", "last", "--stderr"); out != "err1\n" {
		t.Errorf("logs --stderr: stdout %q, want the run's stderr", out)
	}
	if out, errs := mustCLI(t, 0, rs.dir, "logs", "last", "--stdout"); out != "out1\nout2\n" || errs != "" {
		t.Errorf("logs --stdout: %q %q", out, errs)
	}
	if _, errs := mustCLI(t, 2, rs.dir, "logs"); !strings.Contains(errs, "logs: which run?") {
		t.Errorf("logs without a run: %q", errs)
	}

	// Follow a run that is still going: the output after the pause arrives.
	first := strings.TrimSpace(func() string { o, _ := mustCLI(t, 0, rs.dir, "runs", "-q", "-n", "1"); return o }())
	proc, perr := helperProcess(t, rs.dir, "run", rs.commit, "--arg", "PAUSE=2")
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() bool {
		o, _, _ := cli(t, rs.dir, "runs", "-q", "-n", "1", "--status", "running")
		return strings.TrimSpace(o) != ""
	})
	start := time.Now()
	out, _ = mustCLI(t, 0, rs.dir, "logs", "-f", "--stdout", "last")
	if out != "out1\nout2\n" || time.Since(start) < 500*time.Millisecond {
		t.Errorf("logs -f: %q after %s; want both lines, the second after the pause", out, time.Since(start))
	}
	if err := proc.Wait(); err != nil {
		t.Fatalf("run: %v\n%s", err, perr)
	}

	// The other commands that take a run take last and last~N.
	for _, args := range [][]string{
		{"show", "last"}, {"show", "last~1"}, {"diff", "last~1", "last"}, {"export", "last", "--format", "json"},
		{"logs", "last~1"}, {"show", first[:8]},
	} {
		if _, errs, code := cli(t, rs.dir, args...); code != 0 && code != 1 {
			t.Errorf("%v: exit %d\n%s", args, code, errs)
		}
	}
	out, errs, code := cli(t, rs.dir, "reproduce", "last~1")
	if code != 0 || !strings.Contains(out, "reproduced") {
		t.Errorf("reproduce last~1: exit %d\n%s\n%s", code, out, errs)
	}
}

// TestLogsFollowSlurm follows a run queued on Slurm until its record comes
// back from the node.
func TestLogsFollowSlurm(t *testing.T) {
	requireSlurm(t)
	rs := newRunStore(t, slurmRunfile)
	var r struct{ ID string }
	if errs, code := slurmRun(t, rs, &r); code != 0 || r.ID == "" {
		t.Fatalf("run --executor slurm: exit %d\n%s", code, errs)
	}
	out, _ := mustCLI(t, 0, rs.dir, "logs", "--follow", "--stdout", r.ID)
	if out != "done\n" {
		t.Errorf("logs -f of a Slurm run: %q", out)
	}
	waitStatus(t, rs.dir, r.ID, 5*time.Second, func(s core.RunStatus) bool { return s.Finished() })
}
