package env

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core/coretest"
)

// unameArch maps GOARCH to what uname -m prints on Linux.
var unameArch = map[string][]string{
	"amd64":    {"x86_64"},
	"386":      {"i386", "i486", "i586", "i686", "x86_64"},
	"arm64":    {"aarch64", "arm64"},
	"arm":      {"armv6l", "armv7l", "armv8l", "aarch64"},
	"ppc64le":  {"ppc64le"},
	"ppc64":    {"ppc64"},
	"s390x":    {"s390x"},
	"riscv64":  {"riscv64"},
	"loong64":  {"loongarch64"},
	"mips64le": {"mips64"},
}

func TestCollectSystemKernelMatchesUname(t *testing.T) {
	uname := coretest.RequireBinary(t, "uname")
	out := func(flag string) string {
		b, err := exec.Command(uname, flag).Output()
		if err != nil {
			t.Fatalf("uname %s: %v", flag, err)
		}
		return strings.TrimSpace(string(b))
	}
	k := CollectSystemKernel(context.Background(), RuntimeInfo{Name: "runc", Version: "1.1.12"})
	t.Logf("errors: %v; %d sysctls, %d config options, %d modules", k.Errors, len(k.Sysctls), len(k.KernelConfig), len(k.Modules))
	if want := out("-r"); k.KernelRelease != want {
		t.Errorf("KernelRelease %q, uname -r says %q", k.KernelRelease, want)
	}
	if want := out("-v"); k.KernelVersion != want {
		t.Errorf("KernelVersion %q, uname -v says %q", k.KernelVersion, want)
	}
	if want := out("-m"); k.Arch != want {
		t.Errorf("Arch %q, uname -m says %q", k.Arch, want)
	}
	if names, ok := unameArch[runtime.GOARCH]; !ok || !slices.Contains(names, k.Arch) {
		t.Errorf("Arch %q does not match GOARCH %s (want one of %v)", k.Arch, runtime.GOARCH, names)
	}
	if k.Runtime != (RuntimeInfo{Name: "runc", Version: "1.1.12"}) {
		t.Errorf("Runtime %+v, not the one given", k.Runtime)
	}
	if !slices.IsSorted(k.Modules) {
		t.Errorf("Modules not sorted: %v", k.Modules)
	}
	// The sources every Linux host (and CI's Debian 12) has.
	for _, src := range []string{SourceUname, SourceOSRelease, SourceMemInfo, SourceCmdline, SourceCPUCount, SourceSysctls} {
		if msg, bad := k.Errors[src]; bad {
			t.Errorf("source %s failed: %s", src, msg)
		}
	}
	if k.OSRelease == "" || k.CPUCount < 1 || k.MemTotalBytes < 1<<20 || len(k.Sysctls) < 100 {
		t.Errorf("thin snapshot: os %q, %d cpus, %d bytes, %d sysctls", k.OSRelease, k.CPUCount, k.MemTotalBytes, len(k.Sysctls))
	}
	if got, want := k.Sysctls["kernel.osrelease"], k.KernelRelease; got != want {
		t.Errorf("sysctl kernel.osrelease %q, want %q", got, want)
	}
	if b, err := os.ReadFile("/proc/sys/vm/swappiness"); err == nil && k.Sysctls["vm.swappiness"] != strings.TrimSpace(string(b)) {
		t.Errorf("vm.swappiness %q, file says %q", k.Sysctls["vm.swappiness"], b)
	}
	if _, err := os.Stat("/proc/config.gz"); err == nil && k.KernelConfig["CONFIG_IKCONFIG"] == "" {
		t.Errorf("/proc/config.gz exists but CONFIG_IKCONFIG is missing from %d options", len(k.KernelConfig))
	}
}

// TestSnapshotStableAcrossCollections is the property the store relies on:
// two runs on one unchanged host share one snapshot. The host is made busy
// in between (processes, files, a uuid read) to move the counters.
func TestSnapshotStableAcrossCollections(t *testing.T) {
	ctx := context.Background()
	a := CollectSystemKernel(ctx, RuntimeInfo{Name: "runc", Version: "1.1.12"})
	for i := range 20 {
		os.WriteFile(filepath.Join(t.TempDir(), "f"), []byte{byte(i)}, 0o644)
		if p, err := exec.LookPath("true"); err == nil {
			exec.Command(p).Run()
		}
	}
	os.ReadFile("/proc/sys/kernel/random/uuid")
	time.Sleep(50 * time.Millisecond)
	b := CollectSystemKernel(ctx, RuntimeInfo{Name: "runc", Version: "1.1.12"})
	if a.SHA256() != b.SHA256() {
		d := Compare(a, b)
		t.Fatalf("two collections on one host differ: %s; sysctls %v; errors %v / %v", d.Summary(), d.Sysctls, a.Errors, b.Errors)
	}
	for _, name := range []string{"kernel.random.uuid", "kernel.random.boot_id", "fs.file-nr", "fs.dentry-state", "kernel.ns_last_pid", "fs.inode-nr"} {
		if _, ok := a.Sysctls[name]; ok {
			t.Errorf("volatile sysctl %s is in the snapshot", name)
		}
	}
	c := CollectSystemKernel(ctx, RuntimeInfo{Name: "runc", Version: "1.1.13"})
	if c.SHA256() == a.SHA256() {
		t.Error("a new runtime version gave the same snapshot hash")
	}
}

func TestSnapshotJSONRoundTrip(t *testing.T) {
	k := CollectSystemKernel(context.Background(), RuntimeInfo{Name: "runc", Version: "1.1.12"})
	var back SystemKernel
	if err := json.Unmarshal(k.CanonicalJSON(), &back); err != nil {
		t.Fatal(err)
	}
	if back.SHA256() != k.SHA256() {
		t.Fatal("snapshot hash changes across a JSON round trip")
	}
	// Order of modules must not matter.
	x := &SystemKernel{Modules: []string{"b", "a"}}
	y := &SystemKernel{Modules: []string{"a", "b"}}
	if x.SHA256() != y.SHA256() {
		t.Error("module order changes the hash")
	}
}

// TestMissingSourcesRecorded runs the collector on an empty tree: every
// source fails, each is named, and nothing panics or aborts.
func TestMissingSourcesRecorded(t *testing.T) {
	h := host{root: t.TempDir(), sysctlTO: SysctlBudget}
	k := h.collect(context.Background(), RuntimeInfo{Name: "runc"})
	for _, src := range []string{SourceUname, SourceOSRelease, SourceCPUInfo, SourceMemInfo, SourceCmdline, SourceKernelConfig, SourceSysctls, SourceModules} {
		if k.Errors[src] == "" {
			t.Errorf("source %s: no error recorded (errors: %v)", src, k.Errors)
		}
	}
	if k.Runtime.Name != "runc" {
		t.Errorf("runtime lost: %+v", k.Runtime)
	}
}

// TestFakeHost reads a complete fake tree: /boot config fallback, quoted
// os-release, cpu list ranges, a kernel without modules.
func TestFakeHost(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("proc/sys/kernel/osrelease", "6.1.0-9-amd64\n")
	write("proc/sys/kernel/version", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.27-1\n")
	write("proc/sys/kernel/arch", "x86_64\n")
	write("proc/sys/kernel/random/uuid", "u\n")
	write("proc/sys/net/ipv4/conf/veth12ab/forwarding", "1\n")
	write("proc/sys/net/ipv4/conf/eth0/forwarding", "0\n")
	write("proc/sys/net/ipv4/conf/eth0.100/forwarding", "1\n")
	write("proc/sys/net/ipv6/conf/eth0/stable_secret", "secret\n")
	write("proc/sys/vm/swappiness", "60\n")
	write("proc/sys/vm/drop_caches", "")
	os.Chmod(filepath.Join(root, "proc/sys/vm/drop_caches"), 0o200)
	write("usr/lib/os-release", "NAME=Debian\nPRETTY_NAME=\"Debian GNU/Linux 12 \\\"bookworm\\\"\"\n")
	write("proc/cpuinfo", "processor\t: 0\nmodel name\t: Fake CPU @ 2.0GHz\n\nprocessor\t: 1\nmodel name\t: Other\n")
	write("sys/devices/system/cpu/online", "0-3,8,10-11\n")
	write("proc/meminfo", "MemTotal:        2048 kB\nMemFree: 1 kB\n")
	write("proc/cmdline", "BOOT_IMAGE=/vmlinuz ro quiet\n")
	write("boot/config-6.1.0-9-amd64", "#\n# CONFIG_MODULES is not set\nCONFIG_SMP=y\nCONFIG_LOCALVERSION=\"\"\nCONFIG_HZ=250\n")
	k := host{root: root, sysctlTO: SysctlBudget}.collect(context.Background(), RuntimeInfo{})
	want := &SystemKernel{
		KernelRelease: "6.1.0-9-amd64", KernelVersion: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.27-1", Arch: "x86_64",
		OSRelease: `Debian GNU/Linux 12 "bookworm"`, CPUModel: "Fake CPU @ 2.0GHz", CPUCount: 7, MemTotalBytes: 2048 << 10,
		Cmdline:      "BOOT_IMAGE=/vmlinuz ro quiet",
		KernelConfig: map[string]string{"CONFIG_SMP": "y", "CONFIG_LOCALVERSION": `""`, "CONFIG_HZ": "250"},
		Sysctls: map[string]string{
			"kernel.osrelease": "6.1.0-9-amd64", "kernel.version": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.27-1", "kernel.arch": "x86_64",
			"net.ipv4.conf.eth0.forwarding": "0", "net.ipv4.conf.eth0/100.forwarding": "1", "vm.swappiness": "60",
		},
	}
	if got, w := string(k.CanonicalJSON()), string(want.CanonicalJSON()); got != w {
		t.Errorf("fake host snapshot\n got %s\nwant %s", got, w)
	}
}

func TestParseModulesSorted(t *testing.T) {
	in := "overlay 151552 0 - Live 0x0\nbr_netfilter 32768 0 - Live 0x0\nbridge 311296 1 br_netfilter, Live 0x0\nveth 40960 0 - Live 0x0\n"
	got, err := parseModules(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"br_netfilter", "bridge", "overlay", "veth"}; !slices.Equal(got, want) {
		t.Errorf("modules %v, want %v", got, want)
	}
}

func TestKeepSysctl(t *testing.T) {
	for name, want := range map[string]bool{
		"vm.swappiness":                       true,
		"kernel.random.uuid":                  false,
		"kernel.random.boot_id":               false,
		"fs.file-nr":                          false,
		"fs.dentry-state":                     false,
		"kernel.ns_last_pid":                  false,
		"kernel.hostname":                     false,
		"net.ipv6.conf.eth0.stable_secret":    false,
		"net.ipv4.conf.veth0a1b2c.forwarding": false,
		"net.ipv4.neigh.vethx.gc_stale_time":  false,
		"net.ipv4.conf.eth0.forwarding":       true,
		"fs.binfmt_misc.":                     false,
	} {
		if got := keepSysctl(name); got != want {
			t.Errorf("keepSysctl(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string]int{"0": 1, "0-1": 2, "0-3,8,10-11": 7, "": 0, "3-1": 0, "x": 0} {
		got, err := parseCPUList(in)
		if got != want || (want == 0) != (err != nil) {
			t.Errorf("parseCPUList(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestSysctlBudget(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m, err := collectSysctls(ctx, "/proc/sys", SysctlBudget)
	if err == nil || m != nil {
		t.Fatalf("walk with a cancelled context: %d values, err %v; want none and an error", len(m), err)
	}
	// A fifo would block a plain read forever; it is not a regular file and is skipped.
	dir := t.TempDir()
	if err := exec.Command("mkfifo", filepath.Join(dir, "fifo")).Run(); err == nil {
		os.WriteFile(filepath.Join(dir, "a"), []byte("1\n"), 0o644)
		start := time.Now()
		m, err := collectSysctls(context.Background(), dir, SysctlBudget)
		if err != nil || m["a"] != "1" || len(m) != 1 || time.Since(start) > SysctlBudget {
			t.Errorf("walk beside a fifo: %v, %v in %v", m, err, time.Since(start))
		}
	}
}

func TestCollectEnvironment(t *testing.T) {
	e, err := CollectEnvironment()
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if e.UID != os.Getuid() || e.GID != os.Getegid() || e.Hostname != host {
		t.Errorf("environment %+v, want uid %d gid %d host %q", e, os.Getuid(), os.Getegid(), host)
	}
	id := coretest.RequireBinary(t, "id")
	if b, err := exec.Command(id, "-un").Output(); err == nil && e.User != strings.TrimSpace(string(b)) {
		t.Errorf("user %q, id -un says %q", e.User, b)
	}
	if !slices.IsSorted(e.Groups) || e.Groups == nil {
		t.Errorf("groups %v: want sorted, non-nil", e.Groups)
	}
	e2, _ := CollectEnvironment()
	if e.SHA256() != e2.SHA256() || len(e.SHA256()) != 64 {
		t.Errorf("environment hash unstable: %s vs %s", e.SHA256(), e2.SHA256())
	}
	e2.Groups = append([]int{99999}, e2.Groups...)
	if e.SHA256() == e2.SHA256() {
		t.Error("another group list, same hash")
	}
}

func BenchmarkCollectSystemKernel(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		k := CollectSystemKernel(ctx, RuntimeInfo{Name: "runc", Version: "1.1.12"})
		if k.KernelRelease == "" {
			b.Fatal("no kernel release")
		}
	}
}

func BenchmarkSysctlWalk(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := collectSysctls(context.Background(), "/proc/sys", SysctlBudget); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSystemKernelSHA256(b *testing.B) {
	k := CollectSystemKernel(context.Background(), RuntimeInfo{Name: "runc", Version: "1.1.12"})
	b.ReportAllocs()
	for b.Loop() {
		k.SHA256()
	}
}
