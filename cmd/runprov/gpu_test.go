package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/history"
)

// TestShowDiffGPU: show (text and JSON, which validates against the record
// schema), the json export and diff carry a run's GPU facts and devices; two
// runs whose snapshots differ only in the NVIDIA driver differ in that.
func TestShowDiffGPU(t *testing.T) {
	store := historyStore(t, 0, 0, false)
	a, b := twoRuns()
	for _, r := range []*core.Run{a, b} {
		r.Devices = []string{"nvidia.com/gpu=0"}
		r.CDISpecs = []core.CDISpec{{Path: "/etc/cdi/nvidia.yaml", SHA256: strings.Repeat("ab", 32)}}
	}
	kernel := func(driver string) *core.SystemKernel {
		k := testKernel()
		k.GPU = &core.GPUInfo{NVIDIADriver: driver,
			Devices:  []core.GPUDevice{{Vendor: "nvidia", Model: "NVIDIA A100-SXM4-40GB", BusID: "0000:af:00.0"}},
			DevNodes: []string{"/dev/nvidia0", "/dev/nvidiactl"}}
		return k
	}
	putRuns(t, store, kernel("550.54.15"), a)
	putRuns(t, store, kernel("550.90.07"), b)

	out, _ := mustCLI(t, 0, store, "--json", "show", a.ID)
	validateJSON(t, compileCLISchema(t, runRecordSchema), []byte(out))
	exp, _ := mustCLI(t, 0, store, "export", a.ID, "--format", "json")
	for name, doc := range map[string]string{"show --json": out, "export": exp} {
		var rec history.Record
		if err := json.Unmarshal([]byte(doc), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.SystemKernel == nil || !reflect.DeepEqual(rec.SystemKernel.GPU, kernel("550.54.15").GPU) ||
			!reflect.DeepEqual(rec.Devices, a.Devices) || !reflect.DeepEqual(rec.CDISpecs, a.CDISpecs) {
			t.Errorf("%s: gpu %+v devices %v specs %v", name, rec.SystemKernel, rec.Devices, rec.CDISpecs)
		}
	}
	text, _ := mustCLI(t, 0, store, "show", a.ID)
	for _, want := range []string{"nvidia driver 550.54.15", "nvidia NVIDIA A100-SXM4-40GB at 0000:af:00.0", "/dev/nvidia0 /dev/nvidiactl", "device       nvidia.com/gpu=0", "/etc/cdi/nvidia.yaml sha256:abab"} {
		if !strings.Contains(text, want) {
			t.Errorf("show lacks %q:\n%s", want, text)
		}
	}

	diff, _ := mustCLI(t, 1, store, "--json", "diff", a.ID, b.ID)
	var d history.Diff
	if err := json.Unmarshal([]byte(diff), &d); err != nil {
		t.Fatalf("%v\n%s", err, diff)
	}
	want := []history.Change{{Field: "gpu.nvidia_driver", A: "550.54.15", B: "550.90.07"}}
	if d.Equivalent || d.SystemKernel == nil || d.SystemKernel.Summary != "nvidia driver 550.54.15 -> 550.90.07" || !reflect.DeepEqual(d.SystemKernel.Changes, want) {
		t.Errorf("diff: equivalent %v, system kernel %+v", d.Equivalent, d.SystemKernel)
	}
}
