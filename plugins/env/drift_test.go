package env

import (
	"maps"
	"slices"
	"testing"
)

func baseSnapshot() *SystemKernel {
	return &SystemKernel{
		KernelRelease: "6.1.0-1", KernelVersion: "#1 SMP", OSRelease: "Debian GNU/Linux 12 (bookworm)", Arch: "x86_64",
		CPUModel: "AMD EPYC", CPUCount: 2, MemTotalBytes: 4 << 30,
		Runtime:      RuntimeInfo{Name: "runc", Version: "1.1.5"},
		Cmdline:      "ro quiet",
		KernelConfig: map[string]string{"CONFIG_SMP": "y", "CONFIG_HZ": "250"},
		Sysctls:      map[string]string{"vm.swappiness": "60", "kernel.pid_max": "4194304", "net.core.somaxconn": "4096", "fs.file-max": "100"},
		Modules:      []string{"bridge", "overlay"},
	}
}

// clone copies k deeply enough for the test to change the copy.
func clone(k *SystemKernel) *SystemKernel {
	c := *k
	c.KernelConfig = maps.Clone(k.KernelConfig)
	c.Sysctls = maps.Clone(k.Sysctls)
	c.Modules = slices.Clone(k.Modules)
	c.Errors = maps.Clone(k.Errors)
	return &c
}

func TestCompare(t *testing.T) {
	base := baseSnapshot()
	for _, tc := range []struct {
		name    string
		change  func(k *SystemKernel)
		summary string
		check   func(t *testing.T, d Drift)
	}{
		{name: "unchanged", change: func(*SystemKernel) {}, summary: ""},
		{
			name: "the issue's example",
			change: func(k *SystemKernel) {
				k.KernelRelease = "6.1.0-2"
				k.KernelVersion = "#2 SMP"
				k.Sysctls["vm.swappiness"] = "10"       // changed
				delete(k.Sysctls, "net.core.somaxconn") // removed
				k.Sysctls["vm.overcommit_memory"] = "1" // added
				k.Modules = []string{"bridge", "overlay", "veth"}
				k.Runtime.Version = "1.1.12"
			},
			summary: "kernel 6.1.0-1 -> 6.1.0-2, 3 sysctls, +1/-0 modules, runc 1.1.5 -> 1.1.12",
			check: func(t *testing.T, d Drift) {
				if want := []string{"net.core.somaxconn", "vm.overcommit_memory", "vm.swappiness"}; !slices.Equal(d.Sysctls, want) {
					t.Errorf("Sysctls %v, want %v", d.Sysctls, want)
				}
				if !slices.Equal(d.ModulesAdded, []string{"veth"}) || d.ModulesRemoved != nil {
					t.Errorf("modules +%v -%v", d.ModulesAdded, d.ModulesRemoved)
				}
				if d.KernelRelease != [2]string{"6.1.0-1", "6.1.0-2"} || d.Runtime != [2]string{"runc 1.1.5", "runc 1.1.12"} {
					t.Errorf("pairs: kernel %v runtime %v", d.KernelRelease, d.Runtime)
				}
			},
		},
		{
			name: "one sysctl, modules removed, other runtime",
			change: func(k *SystemKernel) {
				k.Sysctls["fs.file-max"] = "200"
				k.Modules = nil
				k.Runtime = RuntimeInfo{Name: "ch-run", Version: "0.38"}
			},
			summary: "1 sysctl, +0/-2 modules, runtime runc 1.1.5 -> ch-run 0.38",
		},
		{
			name: "os, config, cmdline, cpu, memory",
			change: func(k *SystemKernel) {
				k.OSRelease = "Debian GNU/Linux 13 (trixie)"
				k.KernelConfig["CONFIG_HZ"] = "1000"
				k.KernelConfig["CONFIG_BPF"] = "y"
				k.Cmdline = "ro"
				k.CPUCount = 4
				k.MemTotalBytes = 8 << 30
			},
			summary: "os Debian GNU/Linux 12 (bookworm) -> Debian GNU/Linux 13 (trixie), 2 kernel config options, cmdline changed, cpus 2 -> 4, memory 4096 MiB -> 8192 MiB",
		},
		{
			name:    "same release rebuilt",
			change:  func(k *SystemKernel) { k.KernelVersion = "#2 SMP" },
			summary: "kernel build changed",
		},
		{
			name: "unreadable source is not drift",
			change: func(k *SystemKernel) {
				k.Sysctls = nil
				k.Errors = map[string]string{SourceSysctls: "walk stopped"}
			},
			summary: "",
			check: func(t *testing.T, d Drift) {
				if !slices.Equal(d.NotCompared, []string{SourceSysctls}) {
					t.Errorf("NotCompared %v", d.NotCompared)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := clone(base)
			tc.change(cur)
			d := Compare(base, cur)
			if got := d.Summary(); got != tc.summary {
				t.Errorf("Summary\n got %q\nwant %q", got, tc.summary)
			}
			if d.Empty() != (tc.summary == "") {
				t.Errorf("Empty() = %v with summary %q", d.Empty(), tc.summary)
			}
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}
	if d := Compare(nil, base); !d.Empty() || d.Summary() != "" {
		t.Errorf("first run (no previous snapshot) drifted: %+v", d)
	}
}
