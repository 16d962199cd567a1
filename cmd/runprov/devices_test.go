package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/history"
)

// cdiSpecs writes a CDI spec of example.com/dev into a new directory named by
// RUNPROV_CDI_SPEC_DIRS and returns the spec file. Devices:
//   - null: the host's /dev/null at /dev/xnull, and XDEV=1;
//   - zero: the host's /dev/zero at /dev/xzero;
//   - probe: no device node, only a bind of a fuse node (10:229, mode 0666)
//     at /dev/yfuse, which the device cgroup must deny;
//   - fuse: the same fuse node as a device node at /dev/xfuse.
func cdiSpecs(t *testing.T) string {
	t.Helper()
	// The fuse node must be reachable by the container's root, an
	// unprivileged host id: not under a 0700 test directory.
	nodes, err := os.MkdirTemp("/var/tmp", "runprov-cdi-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(nodes) })
	if err := os.Chmod(nodes, 0o755); err != nil {
		t.Fatal(err)
	}
	fuse := filepath.Join(nodes, "fuse")
	if err := unix.Mknod(fuse, unix.S_IFCHR|0o666, int(unix.Mkdev(10, 229))); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(fuse, 0o666); err != nil { // past the umask
		t.Fatal(err)
	}
	dir := t.TempDir()
	spec := `{"cdiVersion": "0.6.0", "kind": "example.com/dev", "devices": [
  {"name": "null", "containerEdits": {"deviceNodes": [{"path": "/dev/xnull", "hostPath": "/dev/null"}], "env": ["XDEV=1"]}},
  {"name": "zero", "containerEdits": {"deviceNodes": [{"path": "/dev/xzero", "hostPath": "/dev/zero"}]}},
  {"name": "probe", "containerEdits": {"mounts": [{"hostPath": "` + fuse + `", "containerPath": "/dev/yfuse", "options": ["bind"]}]}},
  {"name": "fuse", "containerEdits": {"deviceNodes": [{"path": "/dev/xfuse", "hostPath": "` + fuse + `"}]}}
]}`
	path := filepath.Join(dir, "example.json")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RUNPROV_CDI_SPEC_DIRS", "/nonexistent/cdi:"+dir)
	return path
}

const deviceRunfile = `# runprov-format=2
FROM IMAGE
DEVICE example.com/dev=null
CMD ["/bin/sh", "-c", "echo hi > /dev/xnull && echo xnull-written; echo XDEV=$XDEV; test -e /dev/xzero && echo xzero-present; test -e /dev/xfuse && echo xfuse-present; (exec 3<>/dev/yfuse) 2>/dev/null && echo yfuse-opened || echo yfuse-denied; true"]
`

// TestRunDevices: a CDI device named by DEVICE (and one by --device) is
// applied in a real runc run: its node can be written, its variable is
// set; a device of the same spec that was not named is absent; a device
// reachable only through a spec's bind mount is denied by the device
// cgroup. The record names the devices and the spec file's sha256, and
// show and the json export carry them.
func TestRunDevices(t *testing.T) {
	requireRunc(t)
	spec := cdiSpecs(t)
	rs := newRunStore(t, deviceRunfile)
	r, errs, code := rs.run(t, "--no-input", "--device", "example.com/dev=probe")
	if code != 0 || r == nil {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	for _, want := range []string{"xnull-written", "XDEV=1", "yfuse-denied"} {
		if !strings.Contains(errs, want) {
			t.Errorf("container output lacks %q:\n%s", want, errs)
		}
	}
	for _, bad := range []string{"xzero-present", "xfuse-present", "yfuse-opened"} {
		if strings.Contains(errs, bad) {
			t.Errorf("container output has %q:\n%s", bad, errs)
		}
	}
	want := []core.CDISpec{{Path: spec, SHA256: fileSum(t, spec)}}
	check := func(what string, got *core.Run) {
		t.Helper()
		if !slices.Equal(got.Devices, []string{"example.com/dev=null", "example.com/dev=probe"}) || !slices.Equal(got.CDISpecs, want) {
			t.Errorf("%s: devices %q, specs %+v; want specs %+v", what, got.Devices, got.CDISpecs, want)
		}
	}
	check("run", r)
	for _, args := range [][]string{{"--json", "show", r.ID}, {"export", r.ID, "--format", "json"}} {
		out, _ := mustCLI(t, 0, rs.dir, args...)
		validateJSON(t, compileCLISchema(t, runRecordSchema), []byte(out))
		var rec history.Record
		if err := json.Unmarshal([]byte(out), &rec); err != nil {
			t.Fatal(err)
		}
		check(strings.Join(args, " "), &rec.Run)
	}
	text, _ := mustCLI(t, 0, rs.dir, "show", r.ID)
	if !strings.Contains(text, "example.com/dev=probe") || !strings.Contains(text, want[0].SHA256) {
		t.Errorf("show lacks the devices:\n%s", text)
	}

	// The same fuse node as a device node opens: the probe was refused by
	// the device cgroup, not by the node or the mount.
	rs.commit = rs.add(t, `# runprov-format=2
FROM IMAGE
DEVICE example.com/dev=fuse
CMD ["/bin/sh", "-c", "(exec 3<>/dev/xfuse) && echo xfuse-opened"]
`)
	if r, errs, code := rs.run(t, "--no-input"); code != 0 || r == nil || !strings.Contains(errs, "xfuse-opened") {
		t.Errorf("fuse as a device node: exit %d\n%s", code, errs)
	}
}

// TestRunDeviceRefused: a device no spec declares, a malformed --device, a
// spec with hooks and a runtime that cannot give devices are refused before
// the run (125), with what to do.
func TestRunDeviceRefused(t *testing.T) {
	requireRunc(t)
	cdiSpecs(t)
	rs := newRunStore(t, deviceRunfile)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--device", "example.com/dev=nope"}, []string{"example.com/dev=nope", "example.com/dev=null", "example.com/dev=zero", "example.com/dev=fuse"}},
		{[]string{"--device", "gpu0"}, []string{"--device gpu0", "VENDOR/CLASS=NAME"}},
		{[]string{"--runtime", "ch-run"}, []string{"ch-run", "cannot give the run CDI devices"}},
	} {
		r, errs, code := rs.run(t, append([]string{"--no-input"}, tc.args...)...)
		if code != exitRunprov || r != nil {
			t.Errorf("%q: exit %d, want %d\n%s", tc.args, code, exitRunprov, errs)
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%q: stderr lacks %q:\n%s", tc.args, w, errs)
			}
		}
	}
	if n := runCount(t, rs.dir); n != 0 {
		t.Errorf("%d runs recorded", n)
	}
}

// TestRunDeviceHooks: a CDI spec with a hook is refused (125) unless the
// site policy allows CDI hooks; then the run gets the device.
func TestRunDeviceHooks(t *testing.T) {
	requireRunc(t)
	dir := policyDir(t)
	specs := t.TempDir()
	spec := `{"cdiVersion": "0.6.0", "kind": "hooks.example/dev", "devices": [
  {"name": "h", "containerEdits": {"deviceNodes": [{"path": "/dev/hnull", "hostPath": "/dev/null"}],
   "hooks": [{"hookName": "createRuntime", "path": "/bin/true"}]}}]}`
	if err := os.WriteFile(filepath.Join(specs, "hooks.json"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RUNPROV_CDI_SPEC_DIRS", specs)
	rs := newRunStore(t, `# runprov-format=2
FROM IMAGE
DEVICE hooks.example/dev=h
CMD ["/bin/sh", "-c", "echo x > /dev/hnull && echo hnull-written"]
`)
	path := filepath.Join(dir, "policy.json")
	for _, policy := range []string{"", `{"allow_cdi_hooks": false}`} {
		if policy != "" {
			writePolicy(t, path, policy)
		}
		_, errs, code := rs.run(t, "--no-input")
		if code != exitRunprov || !strings.Contains(errs, "hooks") || !strings.Contains(errs, "allow_cdi_hooks") {
			t.Errorf("policy %q: exit %d, want %d naming allow_cdi_hooks\n%s", policy, code, exitRunprov, errs)
		}
	}
	writePolicy(t, path, `{"allow_cdi_hooks": true}`)
	r, errs, code := rs.run(t, "--no-input")
	if code != 0 || r == nil || !strings.Contains(errs, "hnull-written") {
		t.Fatalf("hooks allowed: exit %d\n%s", code, errs)
	}
	cfg, err := os.ReadFile(filepath.Join(rs.dir, "runs", r.ID, "config.json"))
	if err != nil || !strings.Contains(string(cfg), `"createRuntime"`) {
		t.Errorf("config.json has no createRuntime hook (%v)", err)
	}
}
