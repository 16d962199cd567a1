package producer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/runfile"
)

const digest = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func plan(t *testing.T, rf string, img core.ImageConfig, cmd []string, inputs map[string]string) (*Planned, error) {
	t.Helper()
	f, err := runfile.Parse("Runfile", []byte("FROM busybox@"+digest+"\n"+rf))
	if err != nil {
		t.Fatal(err)
	}
	if f, err = f.Resolve(nil); err != nil {
		t.Fatal(err)
	}
	return Plan(PlanInput{Runfile: f, Image: img, Command: cmd, Inputs: inputs, NoInput: len(inputs) == 0, OutputsDir: "/o", ScratchDir: "/s", VolumesDir: "/v"})
}

// TestPlanCommand: ENTRYPOINT and CMD combine as in Dockerfiles.
func TestPlanCommand(t *testing.T) {
	img := core.ImageConfig{Entrypoint: []string{"/img-entry"}, Cmd: []string{"img-cmd"}}
	for _, tc := range []struct {
		name, rf string
		cmd      []string
		want     []string
	}{
		{"image", "", nil, []string{"/img-entry", "img-cmd"}},
		{"runfile cmd", `CMD ["a"]`, nil, []string{"/img-entry", "a"}},
		{"runfile entrypoint drops image cmd", `ENTRYPOINT ["/e"]`, nil, []string{"/e"}},
		{"both", "ENTRYPOINT [\"/e\"]\nCMD [\"x\"]", nil, []string{"/e", "x"}},
		{"cli replaces cmd", `CMD ["a"]`, []string{"b", "c"}, []string{"/img-entry", "b", "c"}},
		{"shell form", `CMD echo hi`, nil, []string{"/img-entry", "/bin/sh", "-c", "echo hi"}},
		{"empty entrypoint clears", "ENTRYPOINT []\nCMD [\"/x\"]", nil, []string{"/x"}},
	} {
		p, err := plan(t, tc.rf, img, tc.cmd, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(p.Argv, tc.want) || !slices.Equal(p.Steps[len(p.Steps)-1], tc.want) {
			t.Errorf("%s: argv %q, want %q", tc.name, p.Argv, tc.want)
		}
	}
	if _, err := plan(t, "", core.ImageConfig{}, nil, nil); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("nothing to run: %v", err)
	}
}

func TestPlanLayoutAndEnv(t *testing.T) {
	p, err := plan(t, "ENV A=1 PATH=/p\nRUN setup\nCMD [\"/x\"]", core.ImageConfig{Env: []string{"A=0", "B=2"}}, nil, map[string]string{"data": "/in"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Layout != "tre" || !slices.Equal(p.Env, []string{"A=1", "B=2", "PATH=/p", "TMPDIR=/scratch", "HOME=/scratch"}) {
		t.Errorf("layout %s env %q", p.Layout, p.Env)
	}
	var got []string
	for _, m := range p.Mounts {
		got = append(got, fmt.Sprintf("%s:%s:%s:%v", m.Kind, m.Source, m.Target, m.ReadOnly))
	}
	want := []string{"input:/in:/safe_data:true", "input:/in:/inputs:true", "output:/o:/safe_outputs:false",
		"output:/o:/outputs:false", "scratch:/s/0:/scratch:false", "tmp::/tmp:false"}
	if !slices.Equal(got, want) {
		t.Errorf("mounts\n%q\nwant\n%q", got, want)
	}
	if len(p.Steps) != 2 || !slices.Equal(p.Steps[0], []string{"/bin/sh", "-c", "setup"}) {
		t.Errorf("steps %q", p.Steps)
	}

	if _, err := plan(t, "INPUT d /d\nCMD [\"/x\"]", core.ImageConfig{}, nil, nil); !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), "--input d=PATH") {
		t.Errorf("missing declared input: %v", err)
	}
	if _, err := plan(t, "CMD [\"/x\"]", core.ImageConfig{}, nil, map[string]string{"other": "/x"}); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("unknown input: %v", err)
	}
}

// TestManifest: every file hashed (in parallel), symlinks as links, sorted.
func TestManifest(t *testing.T) {
	dir := t.TempDir()
	want := map[string]string{}
	for i := range 50 {
		p := filepath.Join(dir, fmt.Sprintf("d%d", i%4), fmt.Sprintf("f%02d", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		data := []byte(strings.Repeat(fmt.Sprint(i), i*1000))
		os.WriteFile(p, data, 0o644)
		sum := sha256.Sum256(data)
		rel, _ := filepath.Rel(dir, p)
		want[rel] = hex.EncodeToString(sum[:])
	}
	os.Symlink("/etc/passwd", filepath.Join(dir, "link"))
	recs, err := Manifest(context.Background(), "data", dir, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 51 || !slices.IsSortedFunc(recs, func(a, b core.FileRecord) int { return strings.Compare(a.Path, b.Path) }) {
		t.Fatalf("%d records", len(recs))
	}
	for _, r := range recs {
		if r.Path == "link" {
			if r.Link != "/etc/passwd" || r.SHA256 != "" {
				t.Errorf("link: %+v", r)
			}
			continue
		}
		if r.SHA256 != want[r.Path] || r.Name != "data" {
			t.Errorf("%s: %+v", r.Path, r)
		}
	}
	one, err := Manifest(context.Background(), "x", filepath.Join(dir, "d1", "f01"), 0)
	if err != nil || len(one) != 1 || one[0].Path != "f01" {
		t.Errorf("a file input: %+v %v", one, err)
	}
}
