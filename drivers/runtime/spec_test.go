package runtime_test

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/runtime"
)

// TestSpecSandbox checks the sandbox properties on a spec, whatever the
// golden files say.
func TestSpecSandbox(t *testing.T) {
	idm, err := runtime.RootIDMap(65534, 65534)
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtime.Spec(runtime.SpecOptions{
		Rootfs: "/r", Args: []string{"/bin/true"}, Cwd: "/", UID: 65534, GID: 65534,
		UIDMappings: idm.UIDs, GIDMappings: idm.GIDs,
		Mounts: []core.RunMount{
			{Kind: core.MountInput, Name: "data", Source: "/in", Target: "/data", ReadOnly: true},
			{Kind: core.MountOutput, Source: "/out", Target: "/out"},
			{Kind: core.MountTmp, Target: "/tmp"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Root.Readonly || !s.Process.NoNewPrivileges || s.Process.User.UID != 65534 {
		t.Errorf("root %+v process %+v", s.Root, s.Process)
	}
	c := s.Process.Capabilities
	if c == nil || c.Bounding == nil || len(c.Bounding)+len(c.Effective)+len(c.Permitted)+len(c.Inheritable)+len(c.Ambient) != 0 {
		t.Errorf("capabilities %+v", c)
	}
	var ns []specs.LinuxNamespaceType
	for _, n := range s.Linux.Namespaces {
		if n.Path != "" {
			t.Errorf("namespace %s joins %s", n.Type, n.Path)
		}
		ns = append(ns, n.Type)
	}
	for _, want := range []specs.LinuxNamespaceType{specs.UserNamespace, specs.NetworkNamespace, specs.PIDNamespace, specs.MountNamespace, specs.IPCNamespace, specs.UTSNamespace} {
		if !slices.Contains(ns, want) {
			t.Errorf("no %s namespace", want)
		}
	}
	if m := s.Linux.UIDMappings; len(m) != 1 || m[0].HostID < 100000 || m[0].ContainerID != 0 {
		t.Errorf("uid map %+v: container ids must land on unprivileged host ids", m)
	}
	for _, m := range s.Mounts {
		switch m.Destination {
		case "/data":
			if !slices.Contains(m.Options, "ro") || !slices.Contains(m.Options, "nosuid") || !slices.Contains(m.Options, "nodev") {
				t.Errorf("input mount %+v", m)
			}
		case "/out":
			if !slices.Contains(m.Options, "rw") || !slices.Contains(m.Options, "nosuid") {
				t.Errorf("output mount %+v", m)
			}
		}
	}
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/sys/firmware"} {
		if !slices.Contains(s.Linux.MaskedPaths, p) {
			t.Errorf("%s not masked", p)
		}
	}
	if !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") {
		t.Errorf("/proc/sys not read-only")
	}
	sc := s.Linux.Seccomp
	if sc.DefaultAction != specs.ActAllow || !slices.Contains(sc.Architectures, specs.ArchX86_64) || !slices.Contains(sc.Architectures, specs.ArchX86) || !slices.Contains(sc.Architectures, specs.ArchX32) {
		t.Errorf("seccomp %+v", sc)
	}
	denied := map[string]bool{}
	for _, r := range sc.Syscalls {
		if r.Action == specs.ActErrno && len(r.Args) == 0 {
			for _, n := range r.Names {
				denied[n] = true
			}
		}
	}
	for _, n := range strings.Fields(dockerDenied) {
		if !denied[n] {
			t.Errorf("seccomp does not deny %s", n)
		}
	}
	for n := range denied {
		if n == "personality" || n == "socket" || n == "clone" {
			t.Errorf("seccomp denies %s whatever its arguments", n)
		}
	}
	var vsock bool
	for _, r := range sc.Syscalls {
		if slices.Equal(r.Names, []string{"socket"}) && r.Action == specs.ActErrno && len(r.Args) == 1 &&
			r.Args[0] == (specs.LinuxSeccompArg{Index: 0, Value: 40, Op: specs.OpEqualTo}) {
			vsock = true
		}
	}
	if !vsock {
		t.Errorf("seccomp does not deny socket(AF_VSOCK)")
	}

	if _, err := runtime.RootIDMap(70000, 1); err == nil {
		t.Errorf("a USER beyond the mapped range was accepted")
	}
	if _, err := runtime.Spec(runtime.SpecOptions{Rootfs: "/r", Args: []string{"x"}, Cwd: "/",
		Mounts: []core.RunMount{{Kind: core.MountInput, Source: "rel", Target: "/d"}}}); err == nil {
		t.Errorf("a relative bind source was accepted")
	}
}

// dockerDenied are the syscalls Docker's default profile denies to a
// container without capabilities (whatever their arguments).
const dockerDenied = `mount umount umount2 ptrace keyctl add_key request_key bpf unshare setns
kexec_load kexec_file_load init_module finit_module delete_module create_module
get_kernel_syms query_module swapon swapoff reboot pivot_root chroot
open_by_handle_at name_to_handle_at perf_event_open io_uring_setup io_uring_enter
io_uring_register syslog vhangup sethostname setdomainname fanotify_init acct
quotactl lookup_dcookie userfaultfd nfsservctl settimeofday clock_settime
clock_adjtime adjtimex stime uselib ustat sysfs _sysctl vm86 vm86old iopl ioperm
move_pages mbind set_mempolicy get_mempolicy process_vm_readv process_vm_writev kcmp`

// TestPersonalityRules evaluates the personality rules of the seccomp
// profile: the values Docker allows pass, every other value tried is
// refused (all 24-bit values, single and double bits anywhere in 64, and
// values near the allowed ones).
func TestPersonalityRules(t *testing.T) {
	sc := runtime.SeccompProfile()
	allowed := map[uint64]bool{}
	for _, v := range []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff} {
		allowed[v] = true
		if runtime.PersonalityDenied(sc, v) {
			t.Errorf("personality(%#x) is denied; Docker allows it", v)
		}
	}
	check := func(v uint64) {
		if !allowed[v] && !runtime.PersonalityDenied(sc, v) {
			t.Errorf("personality(%#x) is allowed", v)
		}
	}
	for v := uint64(0); v < 1<<24; v++ {
		check(v)
	}
	for i := 0; i < 64; i++ {
		for j := 0; j < 64; j++ {
			check(1<<i | 1<<j)
			check(0xffffffff ^ (1 << i) ^ (1 << j))
			check(0x20008 | 1<<i)
		}
		check(0xffffffff | 1<<i)
	}
	check(0x0040008) // linux32 -R: PER_LINUX32|ADDR_NO_RANDOMIZE
	check(0xfffffffe)
	check(^uint64(0))
}
