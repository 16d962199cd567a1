package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
)

// TestRunRefusesMissingInput: a declared INPUT without its --input, and a
// TRE-layout run with neither --input data=PATH nor --no-input, are
// refused (exit 125) before anything runs: no run row, no run directory,
// no container; the message names the input and the flag to use.
func TestRunRefusesMissingInput(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, echoRunfile)
	declared := rs.add(t, "FROM IMAGE\nINPUT survey /survey\nOUTPUT /out\nCMD [\"/bin/sh\", \"-c\", \"echo ran > /out/ran\"]\n")
	tre := rs.commit

	refused := func(name, commit string, want ...string) {
		t.Helper()
		out, errs, code := cli(t, rs.dir, "--json", "run", commit)
		if code != exitRunprov || out != "" {
			t.Errorf("%s: exit %d, want %d\n%s%s", name, code, exitRunprov, out, errs)
		}
		for _, w := range want {
			if !strings.Contains(errs, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", name, w, errs)
			}
		}
		if n := runCount(t, rs.dir); n != 0 {
			t.Errorf("%s: %d runs recorded", name, n)
		}
		if ents, _ := os.ReadDir(filepath.Join(rs.dir, "runs")); len(ents) != 0 {
			t.Errorf("%s: run directories left: %v", name, ents)
		}
	}
	refused("declared INPUT", declared, "INPUT survey", "--input survey=PATH")
	refused("TRE layout", tre, "--input data=PATH", "--no-input", "/safe_data")

	if _, errs, code := cli(t, rs.dir, "run", tre, "--no-input", "--input", "data="+t.TempDir()); code != exitUsage {
		t.Errorf("--no-input with --input: exit %d, want %d\n%s", code, exitUsage, errs)
	}
	r, errs, code := rs.run(t, "--no-input")
	if code != 0 || r == nil {
		t.Fatalf("TRE layout with --no-input: exit %d\n%s", code, errs)
	}
	for _, m := range r.Mounts {
		if m.Kind == "input" {
			t.Errorf("a --no-input run has an input mount: %+v", m)
		}
	}
}

// privateInputRunfile copies its private input into an output as USER
// 1000, and lists the input as the container sees it.
const privateInputRunfile = `FROM IMAGE
USER 1000:1000
INPUT data /data
OUTPUT /out
CMD ["/bin/sh", "-c", "cat /data/secret.txt > /out/copy.txt && ls -ln /data"]
`

// privateInput makes a 0700 directory holding a 0600 file under parent.
func privateInput(t *testing.T, parent string) (dir, content string) {
	t.Helper()
	dir = filepath.Join(parent, "private")
	content = "not for everyone\n"
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o700) // whatever the umask
	os.Chmod(filepath.Join(dir, "secret.txt"), 0o600)
	return dir, content
}

// modes returns path's permission bits and owner, and its files'.
func modes(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := d.Info()
		fmt.Fprintf(&b, "%s %v %d\n", p, fi.Mode(), ownerUID(fi))
		return nil
	})
	return b.String()
}

// TestRunPrivateInput: as root, a 0700 input directory with a 0600 file,
// both root's, is readable by the run's USER 1000 through an idmapped
// mount; the host's permissions are unchanged afterwards, the output is
// root's, and nothing stays mounted.
func TestRunPrivateInput(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, privateInputRunfile)
	in, content := privateInput(t, t.TempDir())
	before := modes(t, in)

	r, errs, code := rs.run(t, "--input", "data="+in)
	if code != 0 || r == nil || r.Status != core.RunSucceeded {
		t.Fatalf("run on a private input: exit %d\n%s", code, errs)
	}
	out := filepath.Join(rs.dir, "runs", r.ID, "outputs", "copy.txt")
	data, err := os.ReadFile(out)
	if err != nil || string(data) != content {
		t.Errorf("the run's copy of the private input: %q %v, want %q\n%s", data, err, content, errs)
	}
	if !strings.Contains(errs, " 1000 ") {
		t.Errorf("the container does not see the input as USER 1000's:\n%s", errs)
	}
	if after := modes(t, in); after != before {
		t.Errorf("the input's host permissions changed:\n%s\nwant\n%s", after, before)
	}
	if fi, err := os.Stat(out); err != nil || ownerUID(fi) != os.Getuid() {
		t.Errorf("the output belongs to uid %d, not to the user who ran runprov (%d): %v", ownerUID(fi), os.Getuid(), err)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), r.ID) {
		t.Errorf("a mount of run %s is left:\n%s", r.ID, mi)
	}
	if _, err := os.Stat(filepath.Join("/run/runprov", r.ID)); !os.IsNotExist(err) {
		t.Errorf("the run's runtime directory is left: %v", err)
	}
}

// TestRunPrivateInputRootless: an ordinary user cannot idmap the host's
// file systems, so a private input the run's USER cannot read is refused
// before anything runs (exit 125, the message says what to do); a
// readable one runs, and the USER's output is the user's afterwards.
func TestRunPrivateInputRootless(t *testing.T) {
	rl := newRootless(t)
	in, _ := privateInput(t, rl.base)
	open := filepath.Join(rl.base, "open")
	os.Mkdir(open, 0o755)
	os.WriteFile(filepath.Join(open, "secret.txt"), []byte("shared\n"), 0o644)
	rf := filepath.Join(rl.base, "Runfile.private")
	os.WriteFile(rf, []byte(strings.ReplaceAll(privateInputRunfile, "IMAGE", "busybox@"+rl.digest)), 0o644)
	rl.chown(t, rl.base)
	before := modes(t, in)
	commit := strings.TrimSpace(rl.as(0, "-q", "add", rf))

	errs := rl.as(exitRunprov, "run", commit, "--input", "data="+in)
	for _, want := range []string{in, "could not read", "chmod -R o+rX"} {
		if !strings.Contains(errs, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, errs)
		}
	}
	if out := rl.as(0, "query", "--csv", "SELECT count(*) FROM runs"); !strings.HasSuffix(strings.TrimSpace(out), "\n0") {
		t.Errorf("a refused run was recorded: %s", out)
	}
	if after := modes(t, in); after != before {
		t.Errorf("the input's host permissions changed:\n%s\nwant\n%s", after, before)
	}

	rl.as(0, "run", commit, "--input", "data="+open)
	runs, _ := filepath.Glob(filepath.Join(rl.store, "runs", "*", "outputs", "copy.txt"))
	if len(runs) != 1 {
		t.Fatalf("outputs: %v", runs)
	}
	fi, err := os.Stat(runs[0])
	if err != nil || ownerUID(fi) != rl.uid {
		t.Errorf("the USER 1000 output belongs to uid %d, not to the user %d: %v", ownerUID(fi), rl.uid, err)
	}
}

// TestRunKilledPrivateInputUnmounted: a runprov killed with SIGKILL while
// its run reads an idmapped input leaves the mount; the next command
// unmounts it before removing the run's runtime directory, and the input
// is intact.
func TestRunKilledPrivateInputUnmounted(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, privateInputRunfile)
	in, content := privateInput(t, t.TempDir())
	before := modes(t, in)
	cmd, stderr := helperProcess(t, rs.dir, "run", rs.commit, "--input", "data="+in, "--",
		"/bin/sh", "-c", "cat /data/secret.txt > /out/copy.txt && echo copied && sleep 60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanupContainers(t, rs.dir) }) // what a failing test leaves
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(stderr.String(), "copied") })
	ids, _ := filepath.Glob(filepath.Join(rs.dir, "runs", "*"))
	if len(ids) != 1 {
		t.Fatalf("runs: %v", ids)
	}
	mount := filepath.Join("/run/runprov", filepath.Base(ids[0]), "inputs", "0") + " "
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if !strings.Contains(string(mi), mount) {
		t.Fatalf("no idmapped input mount %s while the run runs:\n%s", mount, mi)
	}
	cmd.Process.Kill()
	cmd.Wait()

	mustCLI(t, 0, rs.dir, "runs")
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), mount) {
		t.Errorf("the killed run's input mount %s is left:\n%s", mount, mi)
	}
	if _, err := os.Stat(filepath.Dir(filepath.Dir(mount))); !os.IsNotExist(err) {
		t.Errorf("the killed run's runtime directory is left: %v", err)
	}
	if after := modes(t, in); after != before {
		t.Errorf("the input changed:\n%s\nwant\n%s", after, before)
	}
	if data, err := os.ReadFile(filepath.Join(in, "secret.txt")); err != nil || string(data) != content {
		t.Errorf("the input's file: %q %v", data, err)
	}
}
