package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
)

// TestReproduceMovedInput: reproduce --input NAME=PATH runs on data that
// moved; the files must still hash as the original run recorded them.
func TestReproduceMovedInput(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, "FROM IMAGE\nINPUT survey /survey\nOUTPUT /out\nCMD [\"/bin/sh\", \"-c\", \"cat /survey/a.csv > /out/copy\"]\n")
	base := t.TempDir()
	old := filepath.Join(base, "old")
	os.MkdirAll(old, 0o755)
	if err := os.WriteFile(filepath.Join(old, "a.csv"), []byte("id,x\n1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	orig, errs, code := rs.run(t, "--input", "survey="+old)
	if code != 0 || orig == nil {
		t.Fatalf("run: exit %d\n%s", code, errs)
	}
	moved := filepath.Join(base, "moved")
	if err := os.Rename(old, moved); err != nil {
		t.Fatal(err)
	}

	_, errs = mustCLI(t, exitRunprov, rs.dir, "reproduce", orig.ID)
	if !strings.Contains(errs, "--input survey=PATH") {
		t.Errorf("reproduce of moved data: the hint does not name --input:\n%s", errs)
	}
	_, errs = mustCLI(t, exitRunprov, rs.dir, "reproduce", orig.ID, "--input", "other="+moved)
	if !strings.Contains(errs, "had no input other (its inputs: survey)") {
		t.Errorf("reproduce --input of an unknown name:\n%s", errs)
	}

	out, errs, code := cli(t, rs.dir, "--json", "reproduce", orig.ID, "--input", "survey="+moved)
	var res struct {
		Run       string `json:"run"`
		Identical bool   `json:"identical"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || !res.Identical {
		t.Fatalf("reproduce --input: exit %d\n%s\n%s", code, out, errs)
	}
	out, _ = mustCLI(t, 0, rs.dir, "--json", "show", res.Run)
	var again core.Run
	if err := json.Unmarshal([]byte(out), &again); err != nil {
		t.Fatal(err)
	}
	for _, m := range again.Mounts {
		if m.Kind == core.MountInput && m.Source != moved {
			t.Errorf("the reproduction bound %s, want the moved data %s", m.Source, moved)
		}
	}

	// The moved data is still compared with the recorded hashes.
	if err := os.WriteFile(filepath.Join(moved, "a.csv"), []byte("id,x\n1,3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errs := mustCLI(t, exitRunprov, rs.dir, "reproduce", orig.ID, "--input", "survey="+moved); !strings.Contains(errs, "inputs changed") {
		t.Errorf("reproduce on changed moved data:\n%s", errs)
	}
}
