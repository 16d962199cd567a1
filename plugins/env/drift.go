package env

import (
	"fmt"
	"slices"
	"strings"
)

// Drift is what changed between the previous run's SystemKernel snapshot
// and this one. Pairs are [previous, current]; a zero pair means unchanged.
type Drift struct {
	KernelRelease [2]string
	KernelVersion [2]string
	OSRelease     [2]string
	Arch          [2]string
	CPUModel      [2]string
	CPUCount      [2]int
	MemTotalBytes [2]int64
	Cmdline       [2]string
	// Runtime pairs "name version" strings ("runc 1.1.5").
	Runtime [2]string
	// Sysctls and KernelConfig name the settings whose value changed, was
	// added or was removed, sorted.
	Sysctls      []string
	KernelConfig []string
	// ModulesAdded and ModulesRemoved are module names, sorted.
	ModulesAdded, ModulesRemoved []string
	// NVIDIADriver and AMDGPUVersion are the GPU driver versions; GPUs
	// the devices, "vendor model bus" joined by "; ".
	NVIDIADriver, AMDGPUVersion, GPUs [2]string
	// NotCompared names the sources left out because either snapshot could
	// not read them (see SystemKernel.Errors), sorted.
	NotCompared []string
}

// Compare returns what drifted from prev to cur. With no previous snapshot
// (prev nil: the commit's first run) nothing has drifted. A source that
// either snapshot failed to read is not compared (an unreadable source is
// not a change of the host) and is listed in NotCompared.
func Compare(prev, cur *SystemKernel) Drift {
	var d Drift
	if prev == nil || cur == nil {
		return d
	}
	failed := func(src string) bool {
		_, a := prev.Errors[src]
		_, b := cur.Errors[src]
		if a || b {
			d.NotCompared = append(d.NotCompared, src)
		}
		return a || b
	}
	pair := func(dst *[2]string, a, b string) {
		if a != b {
			*dst = [2]string{a, b}
		}
	}
	if !failed(SourceUname) {
		pair(&d.KernelRelease, prev.KernelRelease, cur.KernelRelease)
		pair(&d.KernelVersion, prev.KernelVersion, cur.KernelVersion)
		pair(&d.Arch, prev.Arch, cur.Arch)
	}
	if !failed(SourceOSRelease) {
		pair(&d.OSRelease, prev.OSRelease, cur.OSRelease)
	}
	if !failed(SourceCPUInfo) {
		pair(&d.CPUModel, prev.CPUModel, cur.CPUModel)
	}
	if !failed(SourceCPUCount) && prev.CPUCount != cur.CPUCount {
		d.CPUCount = [2]int{prev.CPUCount, cur.CPUCount}
	}
	if !failed(SourceMemInfo) && prev.MemTotalBytes != cur.MemTotalBytes {
		d.MemTotalBytes = [2]int64{prev.MemTotalBytes, cur.MemTotalBytes}
	}
	if !failed(SourceCmdline) {
		pair(&d.Cmdline, prev.Cmdline, cur.Cmdline)
	}
	pair(&d.Runtime, prev.Runtime.String(), cur.Runtime.String())
	if !failed(SourceSysctls) {
		d.Sysctls = changedKeys(prev.Sysctls, cur.Sysctls)
	}
	if !failed(SourceKernelConfig) {
		d.KernelConfig = changedKeys(prev.KernelConfig, cur.KernelConfig)
	}
	if !failed(SourceModules) {
		d.ModulesAdded = missing(cur.Modules, prev.Modules)
		d.ModulesRemoved = missing(prev.Modules, cur.Modules)
	}
	if !failed(SourceGPU) {
		ga, gb := gpuOrZero(prev.GPU), gpuOrZero(cur.GPU)
		pair(&d.NVIDIADriver, ga.NVIDIADriver, gb.NVIDIADriver)
		pair(&d.AMDGPUVersion, ga.AMDGPUVersion, gb.AMDGPUVersion)
		pair(&d.GPUs, gpusText(ga.Devices), gpusText(gb.Devices))
	}
	slices.Sort(d.NotCompared)
	return d
}

func gpuOrZero(g *GPUInfo) GPUInfo {
	if g == nil {
		return GPUInfo{}
	}
	return *g
}

func gpusText(ds []GPUDevice) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.Vendor + " " + d.Model + " " + d.BusID
	}
	return strings.Join(parts, "; ")
}

// changedKeys are the keys whose values differ, including keys only one
// side has, sorted.
func changedKeys(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// missing returns the names of a that b lacks, sorted.
func missing(a, b []string) []string {
	have := make(map[string]bool, len(b))
	for _, n := range b {
		have[n] = true
	}
	var out []string
	for _, n := range a {
		if !have[n] {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Empty reports whether nothing was found to have drifted. Sources that
// were not compared do not count as drift.
func (d Drift) Empty() bool {
	z := Drift{NotCompared: d.NotCompared}
	return d.KernelRelease == z.KernelRelease && d.KernelVersion == z.KernelVersion &&
		d.OSRelease == z.OSRelease && d.Arch == z.Arch && d.CPUModel == z.CPUModel &&
		d.CPUCount == z.CPUCount && d.MemTotalBytes == z.MemTotalBytes && d.Cmdline == z.Cmdline &&
		d.Runtime == z.Runtime && d.NVIDIADriver == z.NVIDIADriver && d.AMDGPUVersion == z.AMDGPUVersion &&
		d.GPUs == z.GPUs && len(d.Sysctls) == 0 && len(d.KernelConfig) == 0 &&
		len(d.ModulesAdded) == 0 && len(d.ModulesRemoved) == 0
}

// Summary is one short line for the terminal and the run record, most
// telling first: "kernel 6.1.0-1 -> 6.1.0-2, 3 sysctls, +1/-0 modules,
// runc 1.1.5 -> 1.1.12". It is "" when the drift is empty.
func (d Drift) Summary() string {
	if d.Empty() {
		return ""
	}
	var parts []string
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	switch {
	case d.KernelRelease != [2]string{}:
		add("kernel %s -> %s", orNone(d.KernelRelease[0]), orNone(d.KernelRelease[1]))
	case d.KernelVersion != [2]string{}:
		add("kernel build changed") // same release, rebuilt: the version string is long
	}
	if d.OSRelease != [2]string{} {
		add("os %s -> %s", orNone(d.OSRelease[0]), orNone(d.OSRelease[1]))
	}
	if d.Arch != [2]string{} {
		add("arch %s -> %s", orNone(d.Arch[0]), orNone(d.Arch[1]))
	}
	if d.NVIDIADriver != [2]string{} {
		add("nvidia driver %s -> %s", orNone(d.NVIDIADriver[0]), orNone(d.NVIDIADriver[1]))
	}
	if d.AMDGPUVersion != [2]string{} {
		add("amdgpu %s -> %s", orNone(d.AMDGPUVersion[0]), orNone(d.AMDGPUVersion[1]))
	}
	if d.GPUs != [2]string{} {
		add("gpus changed")
	}
	if n := len(d.Sysctls); n > 0 {
		add("%d %s", n, plural(n, "sysctl", "sysctls"))
	}
	if len(d.ModulesAdded)+len(d.ModulesRemoved) > 0 {
		add("+%d/-%d modules", len(d.ModulesAdded), len(d.ModulesRemoved))
	}
	if d.Runtime != [2]string{} {
		a, b := d.Runtime[0], d.Runtime[1]
		an, av, _ := strings.Cut(a, " ")
		bn, bv, _ := strings.Cut(b, " ")
		if an == bn && an != "" {
			add("%s %s -> %s", an, orNone(av), orNone(bv))
		} else {
			add("runtime %s -> %s", orNone(a), orNone(b))
		}
	}
	if n := len(d.KernelConfig); n > 0 {
		add("%d kernel config %s", n, plural(n, "option", "options"))
	}
	if d.Cmdline != [2]string{} {
		add("cmdline changed")
	}
	if d.CPUModel != [2]string{} {
		add("cpu model changed")
	}
	if d.CPUCount != [2]int{} {
		add("cpus %d -> %d", d.CPUCount[0], d.CPUCount[1])
	}
	if d.MemTotalBytes != [2]int64{} {
		add("memory %s -> %s", mib(d.MemTotalBytes[0]), mib(d.MemTotalBytes[1]))
	}
	return strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func mib(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }
