package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/core/coretest"
)

// TestRunCommandNotRunnable: a command missing from the image exits 127, one
// that cannot be executed 126 (podman's convention); the run is recorded as
// failed with that status, and runc's error appears once on stderr.
func TestRunCommandNotRunnable(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, "FROM IMAGE\nCMD [\"/nonexistent\"]\n")
	var notFound string // the first run's id
	for _, c := range []struct {
		args []string
		code int
		msg  string // runc's words, once on stderr
	}{
		{nil, 127, "no such file or directory"},
		{[]string{"--", "nonexistent"}, 127, "executable file not found"},
		{[]string{"--", "/etc/passwd"}, 126, "permission denied"},
	} {
		r, errs, code := rs.run(t, append([]string{"--no-input"}, c.args...)...)
		if code != c.code || r == nil {
			t.Errorf("run %v: exit %d, want %d\n%s", c.args, code, c.code, errs)
			continue
		}
		if n := strings.Count(errs, c.msg); n != 1 {
			t.Errorf("run %v: %q on stderr %d times, want once:\n%s", c.args, c.msg, n, errs)
		}
		out, _ := mustCLI(t, 0, rs.dir, "--csv", "query", "SELECT status, exit_code FROM runs WHERE id = '"+r.ID+"'")
		if !strings.Contains(out, "failed,"+strconv.Itoa(c.code)) || r.Status != core.RunFailed || r.ExitCode == nil || *r.ExitCode != c.code {
			t.Errorf("run %v: record %s %v %q, stored:\n%s", c.args, r.Status, r.ExitCode, r.Reason, out)
		}
		if len(r.Steps) != 1 || r.Steps[0].ExitCode != c.code {
			t.Errorf("run %v: steps %+v", c.args, r.Steps)
		}
		if notFound == "" {
			notFound = r.ID
		}
	}

	// reproduce passes the status through; a RUN step stops the run.
	_, errs, code := cli(t, rs.dir, "reproduce", notFound)
	if code != 127 || strings.Count(errs, "no such file or directory") != 1 {
		t.Errorf("reproduce: exit %d, want 127\n%s", code, errs)
	}
	rs.commit = rs.add(t, "FROM IMAGE\nRUN [\"/etc/passwd\"]\nCMD [\"/bin/true\"]\n")
	r, errs, code := rs.run(t, "--no-input")
	if code != 126 || r == nil || !strings.Contains(r.Reason, "RUN step 1") || len(r.Steps) != 2 || r.Steps[0].ExitCode != 126 {
		t.Errorf("RUN step not executable: exit %d, record %+v\n%s", code, r, errs)
	}
}

// TestRunChRunCommandNotRunnable: ch-run's exec failures give the same
// statuses, its own error line printed once.
func TestRunChRunCommandNotRunnable(t *testing.T) {
	coretest.RequireRoot(t)
	coretest.RequireBinary(t, "ch-run")
	rs := newRunStore(t, "FROM IMAGE\nCMD [\"/nonexistent\"]\n")
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 127, "No such file or directory"},
		{[]string{"--", "/etc/passwd"}, 126, "Permission denied"},
		{[]string{"--", "/bin/sh", "-c", "exit 1"}, 1, ""},
	} {
		r, errs, code := rs.run(t, append([]string{"--no-input", "--runtime", "ch-run", "--allow-weaker-sandbox"}, c.args...)...)
		if code != c.code || r == nil || r.Status != core.RunFailed || r.ExitCode == nil || *r.ExitCode != c.code {
			t.Errorf("ch-run %v: exit %d, want %d; record %+v\n%s", c.args, code, c.code, r, errs)
			continue
		}
		if c.msg != "" && strings.Count(errs, c.msg) != 1 {
			t.Errorf("ch-run %v: %q on stderr not once:\n%s", c.args, c.msg, errs)
		}
	}
}
