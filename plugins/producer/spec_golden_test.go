package producer_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/runtime"
	"github.com/runprov/runprov/plugins/producer"
	"github.com/runprov/runprov/runfile"
)

var update = flag.Bool("update", false, "rewrite the golden config.json files")

// caseOptions is options.json of a case under testdata/spec.
type caseOptions struct {
	Inputs   map[string]string `json:"inputs"`
	Args     map[string]string `json:"args"`
	Command  []string          `json:"command"`
	Rootless bool              `json:"rootless"`
	Cgroups  bool              `json:"cgroups"`
	Timeout  time.Duration     `json:"timeout"`
	// Devices are resolved CDI devices, as drivers/cdi returns them.
	Devices *core.DeviceEdits `json:"devices"`
}

// TestSpecGolden builds the config.json of each case (a Runfile, an image
// config and run options) through the pure functions producer.Plan,
// producer.SpecFor and runtime.Spec, and compares it with the golden file.
func TestSpecGolden(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/spec/*")
	if len(dirs) == 0 {
		t.Fatal("no cases")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			got := buildCase(t, dir)
			golden := filepath.Join(dir, "config.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("config.json differs from %s (go test -update rewrites it):\n%s", golden, got)
			}
			// Pure: a second build is byte for byte the same.
			if again := buildCase(t, dir); !bytes.Equal(got, again) {
				t.Errorf("two builds differ")
			}
		})
	}
}

func buildCase(t *testing.T, dir string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "Runfile"))
	if err != nil {
		t.Fatal(err)
	}
	var img core.ImageConfig
	var opts caseOptions
	for name, v := range map[string]any{"image.json": &img, "options.json": &opts} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	parsed, err := runfile.Parse("Runfile", data)
	if err != nil {
		t.Fatal(err)
	}
	rf, err := parsed.Resolve(opts.Args)
	if err != nil {
		t.Fatal(err)
	}
	const run = "/store/runs/0123456789abcdef0123456789abcdef"
	p, err := producer.Plan(producer.PlanInput{Runfile: rf, Image: img, Command: opts.Command, Inputs: opts.Inputs,
		OutputsDir: run + "/outputs", ScratchDir: run + "/scratch", VolumesDir: "/store/volumes", Timeout: opts.Timeout, Devices: opts.Devices})
	if err != nil {
		t.Fatal(err)
	}
	sb := producer.Sandbox{Hostname: "runprov", Rootfs: "/run/runprov/0123456789abcdef0123456789abcdef/rootfs",
		Annotations: map[string]string{"org.runprov.run": "0123456789abcdef0123456789abcdef"}}
	if opts.Rootless {
		// The map RootlessIDMap makes for uid 1000 with subordinate ids
		// 100000:65536 (written out: it reads /etc/subuid).
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65535}}
		sb.IDMap = runtime.IDMap{UIDs: m, GIDs: m, Rootless: true}
		sb.Rootfs = run + "/rootfs"
		sb.Overlay = &runtime.Overlay{Lower: "/store/rootfs/aaaa", Upper: run + "/overlay/upper", Work: run + "/overlay/work"}
	} else {
		if sb.IDMap, err = runtime.RootIDMap(p.UID, p.GID); err != nil {
			t.Fatal(err)
		}
	}
	if opts.Cgroups {
		sb.CgroupsPath = "/runprov/0123456789abcdef0123456789abcdef"
	}
	s, err := producer.SpecFor(p, sb)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}
