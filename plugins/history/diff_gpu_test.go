package history

import (
	"reflect"
	"testing"

	"github.com/runprov/runprov/core"
)

// TestCompareGPUDriverDrift: two runs whose snapshots differ only in the
// NVIDIA driver version differ in exactly that.
func TestCompareGPUDriverDrift(t *testing.T) {
	a, b := pair(2)
	gpu := func(driver string) *core.SystemKernel {
		return &core.SystemKernel{KernelRelease: "6.1.0", Sysctls: map[string]string{"vm.swappiness": "60"},
			GPU: &core.GPUInfo{NVIDIADriver: driver, Devices: []core.GPUDevice{{Vendor: "nvidia", Model: "NVIDIA A100-SXM4-40GB", BusID: "0000:af:00.0"}},
				DevNodes: []string{"/dev/nvidia0", "/dev/nvidiactl"}}}
	}
	ka, kb := gpu("550.54.15"), gpu("550.90.07")
	a.SystemKernelSHA256, b.SystemKernelSHA256 = ka.SHA256(), kb.SHA256()
	d := Compare(Side{Run: a, SystemKernel: ka}, Side{Run: b, SystemKernel: kb})
	if d.Equivalent {
		t.Fatal("a changed driver version: runs reported equivalent")
	}
	kd := d.SystemKernel
	if kd == nil || !kd.Significant || kd.Summary != "nvidia driver 550.54.15 -> 550.90.07" {
		t.Fatalf("system kernel diff %+v", kd)
	}
	want := []Change{{Field: "gpu.nvidia_driver", A: "550.54.15", B: "550.90.07"}}
	if !reflect.DeepEqual(kd.Changes, want) {
		t.Errorf("changes %+v, want %+v", kd.Changes, want)
	}
	for name, sec := range map[string][]Change{"runfile": d.Runfile, "image": d.Image, "args": d.Args, "env": d.Env,
		"mounts": d.Mounts, "runtime": d.Runtime, "host": d.Host, "exit": d.Exit} {
		for _, c := range sec {
			if !c.Info {
				t.Errorf("%s differs too: %+v", name, c)
			}
		}
	}
	if d.Inputs.Differs() || d.Outputs.Differs() {
		t.Errorf("files differ: %+v %+v", d.Inputs, d.Outputs)
	}
}

// TestCompareDevices: runs given other devices, or whose CDI spec file
// changed, differ.
func TestCompareDevices(t *testing.T) {
	a, b := pair(1)
	spec := []core.CDISpec{{Path: "/etc/cdi/nvidia.yaml", SHA256: "aa"}}
	a.Devices, b.Devices = []string{"nvidia.com/gpu=0"}, []string{"nvidia.com/gpu=0"}
	a.CDISpecs, b.CDISpecs = spec, []core.CDISpec{{Path: "/etc/cdi/nvidia.yaml", SHA256: "bb"}}
	d := Compare(Side{Run: a}, Side{Run: b})
	if d.Equivalent || len(d.Runtime) != 1 || d.Runtime[0].Field != "cdi_specs" {
		t.Errorf("changed spec file: equivalent %v, runtime %+v", d.Equivalent, d.Runtime)
	}
	b.CDISpecs, b.Devices = spec, []string{"nvidia.com/gpu=1"}
	d = Compare(Side{Run: a}, Side{Run: b})
	if d.Equivalent || len(d.Runtime) != 1 || d.Runtime[0].Field != "devices" {
		t.Errorf("other device: equivalent %v, runtime %+v", d.Equivalent, d.Runtime)
	}
}
