package history

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
)

// TestCheckOutputsLayouts: subjects map to files as run --outputs DIR lays
// them out: one OUTPUT's files directly in DIR, several OUTPUTs' each under
// its container path.
func TestCheckOutputsLayouts(t *testing.T) {
	const hello = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03" // sha256 "hello\n"
	for _, tc := range []struct {
		name   string
		mounts []core.RunMount
		file   string // where /out/a/x.txt is
	}{
		{"one output", []core.RunMount{{Kind: core.MountOutput, Source: "/h", Target: "/out/a"}}, "x.txt"},
		{"several outputs", []core.RunMount{{Kind: core.MountOutput, Source: "/h/out/a", Target: "/out/a"}, {Kind: core.MountOutput, Source: "/h/out", Target: "/out"}}, "out/a/x.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st := &Statement{Subject: []ResourceDescriptor{{Name: "/out/a/x.txt", Digest: map[string]string{"sha256": hello}}}}
			st.Predicate.BuildDefinition.InternalParameters = map[string]any{"mounts": tc.mounts}
			bad, err := CheckOutputs(context.Background(), st, dir)
			if err != nil || len(bad) != 1 || !strings.Contains(bad[0].String(), "missing ("+filepath.Join(dir, tc.file)+")") {
				t.Fatalf("without the file: %v %v", bad, err)
			}
			os.MkdirAll(filepath.Dir(filepath.Join(dir, tc.file)), 0o755)
			os.WriteFile(filepath.Join(dir, tc.file), []byte("hello\n"), 0o644)
			if bad, err := CheckOutputs(context.Background(), st, dir); err != nil || len(bad) != 0 {
				t.Fatalf("with the file: %v %v", bad, err)
			}
		})
	}
}

// TestDiffStatement names each differing field, keying named descriptors
// by name.
func TestDiffStatement(t *testing.T) {
	rec := testRecord()
	st, err := InToto(rec, ExportOptions{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	signed, _ := StatementJSON(st)
	if d, err := DiffStatement(signed, st); err != nil || len(d) != 0 {
		t.Fatalf("the same statement: %v %v", d, err)
	}
	if SignedVersion(signed) != "v1" {
		t.Errorf("SignedVersion: %q", SignedVersion(signed))
	}
	rec.Outputs[0].SHA256 = strings.Repeat("f", 64)
	code := 7
	rec.ExitCode = &code
	st2, _ := InToto(rec, ExportOptions{Version: "v1"})
	d, err := DiffStatement(signed, st2)
	name := FileLabel(rec.Outputs[0].Name, rec.Outputs[0].Path)
	if err != nil || len(d) != 2 || !strings.HasPrefix(d[0], "predicate.runDetails.byproducts[run].annotations.exitCode: signed ") ||
		!strings.HasPrefix(d[1], "subject["+name+"].digest.sha256: signed ") {
		t.Errorf("diff: %q %v", d, err)
	}
}
