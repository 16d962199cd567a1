package env

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/runprov/runprov/core"
)

// The fixture trees under testdata/env copy the files NVIDIA and AMD
// drivers expose. On a host /proc/driver/nvidia/gpus/* and the drm
// devices' links are named by PCI bus id (0000:3b:00.0); Go module files
// may not have colons, so the fixtures name them gpu0, gpu1 and the bus id
// comes from the "Bus Location" line or uevent's PCI_SLOT_NAME, as on a host.
const envTestdata = "../../testdata/env"

func TestCollectGPU(t *testing.T) {
	for _, tc := range []struct {
		tree string
		want *core.GPUInfo
	}{
		{"nvidia", &core.GPUInfo{
			NVIDIADriver: "550.54.15",
			Devices: []core.GPUDevice{
				{Vendor: "nvidia", Model: "Tesla V100-SXM2-16GB", BusID: "0000:3b:00.0"},
				{Vendor: "nvidia", Model: "NVIDIA A100-SXM4-40GB", BusID: "0000:af:00.0"},
			},
			DevNodes: []string{"/dev/nvidia-modeset", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia0", "/dev/nvidia1", "/dev/nvidiactl"},
		}},
		// card0 is Intel, card1-DP-1 a connector, renderD129 a render node.
		{"amd", &core.GPUInfo{
			AMDGPUVersion: "6.3.6",
			Devices: []core.GPUDevice{
				{Vendor: "amd", Model: "PCI 1002:744c", BusID: "0000:03:00.0"},
				{Vendor: "amd", Model: "AMD Instinct MI210", BusID: "0000:c1:00.0"},
			},
			DevNodes: []string{"/dev/kfd"},
		}},
		{"none", nil},
	} {
		t.Run(tc.tree, func(t *testing.T) {
			got, err := CollectGPU(filepath.Join(envTestdata, tc.tree))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestNVIDIAVersionLines: the proprietary and the open kernel module word
// their version line differently.
func TestNVIDIAVersionLines(t *testing.T) {
	for line, want := range map[string]string{
		"NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024":                                                       "550.54.15",
		"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  560.35.03  Release Build  (dvs-builder@U16-I3-B03-4-3)  Fri Aug 16 21:42:42 UTC 2024": "560.35.03",
		"NVRM version: NVIDIA UNIX aarch64 Kernel Module  535.161.08  Tue Mar  5 22:42:15 UTC 2024":                                                     "535.161.08",
	} {
		root := t.TempDir()
		dir := filepath.Join(root, "proc/driver/nvidia")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "version"), []byte(line+"\nGCC version:  gcc version 12.2.0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		g, err := CollectGPU(root)
		if err != nil || g == nil || g.NVIDIADriver != want {
			t.Errorf("%q: got %+v (%v), want driver %s", line, g, err, want)
		}
	}
}

// TestCompareGPUDriver: a changed NVIDIA driver is drift, and the summary
// says so; a host that gains a GPU is drift too.
func TestCompareGPUDriver(t *testing.T) {
	prev := &SystemKernel{KernelRelease: "6.1.0", GPU: &core.GPUInfo{NVIDIADriver: "550.54.15", Devices: []core.GPUDevice{{Vendor: "nvidia", Model: "A100", BusID: "0000:af:00.0"}}}}
	cur := *prev
	cur.GPU = &core.GPUInfo{NVIDIADriver: "550.90.07", Devices: prev.GPU.Devices}
	d := Compare(prev, &cur)
	if d.Empty() || d.Summary() != "nvidia driver 550.54.15 -> 550.90.07" {
		t.Errorf("summary %q (empty %v)", d.Summary(), d.Empty())
	}
	if d := Compare(prev, prev); !d.Empty() {
		t.Errorf("same snapshot drifted: %s", d.Summary())
	}
	bare := *prev
	bare.GPU = nil
	if d := Compare(&bare, prev); d.Empty() || d.Summary() != "nvidia driver (none) -> 550.54.15, gpus changed" {
		t.Errorf("gaining a GPU: %q", d.Summary())
	}
}
