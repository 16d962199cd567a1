package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/core/coretest"
)

// TestDemo runs examples/demo.sh (what `make demo` runs) against a freshly
// built runprov, with its store, image and outputs in a temporary
// directory. The demo must succeed, its own check of the output's sha256
// must have passed, and the run record the demo left must hold, for
// summary.txt, the sha256 of the file as this test computes it.
func TestDemo(t *testing.T) {
	requireRunc(t)
	for _, b := range []string{"sh", "go", "sha256sum", "awk", "sed"} {
		coretest.RequireBinary(t, b)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		coretest.Unavailable(t, "/bin/busybox is missing: install busybox-static")
	}
	script, err := filepath.Abs("../../examples/demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{script, "../../examples/build-image/main.go", "../../examples/csv-summary/Runfile"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("the demo needs %s: %v", p, err)
		}
	}
	bin := runprovBinary(t)
	work := filepath.Join(t.TempDir(), "demo")
	store := filepath.Join(work, "store")
	t.Cleanup(func() { checkNoContainers(t, store) })

	cmd := exec.Command("sh", script, bin)
	cmd.Env = append(os.Environ(), "RUNPROV_DEMO_DIR="+work, "RUNPROV_STORE=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("examples/demo.sh: %v\n%s", err, out)
	}

	data, err := os.ReadFile(filepath.Join(work, "outputs", "summary.txt"))
	if err != nil {
		t.Fatalf("the demo's output: %v\n%s", err, out)
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	if !strings.Contains(string(out), "output sha256 ok: summary.txt "+want) {
		t.Errorf("the demo did not report its sha256 check of summary.txt (%s):\n%s", want, out)
	}

	// The record, read here rather than by the script's awk.
	runsOut, _ := mustCLI(t, 0, store, "--json", "runs")
	var runs []core.Run
	if err := json.Unmarshal([]byte(runsOut), &runs); err != nil || len(runs) != 1 {
		t.Fatalf("runs of the demo store: %v\n%s", err, runsOut)
	}
	showOut, _ := mustCLI(t, 0, store, "show", "--json", runs[0].ID)
	var r core.Run
	if err := json.Unmarshal([]byte(showOut), &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != core.RunSucceeded || r.ExitCode == nil || *r.ExitCode != 0 {
		t.Errorf("demo run: status %s, exit %v", r.Status, r.ExitCode)
	}
	var got []string
	for _, f := range r.Outputs {
		if f.Path == "summary.txt" {
			got = append(got, f.SHA256)
		}
	}
	if len(got) != 1 || got[0] != want {
		t.Errorf("the record's sha256 of summary.txt: %v, the file's: %s", got, want)
	}
}
