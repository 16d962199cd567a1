package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
