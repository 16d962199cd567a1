package runtime

import (
	"fmt"
	"path"
	"sort"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/runprov/runprov/core"
)

// SpecVersion is the runtime-spec version the configs claim: they use
// nothing newer, so runc 1.1 (Debian 12) reads them as written.
const SpecVersion = "1.0.2"

// Overlay is a root filesystem the runtime assembles itself, in the
// container's user namespace: the shared, unpacked image rootfs as the
// lower layer and a per-run upper directory that receives only the mount
// points the image lacks. Rootless runs use it; root runs get an overlay
// mounted by the producer on the host (see plugins/producer).
type Overlay struct {
	Lower string `json:"lower"`
	Upper string `json:"upper"`
	Work  string `json:"work"`
}

// SpecOptions is everything a spec is made of. The producer computes it
// from the Runfile, the image config and the run options.
type SpecOptions struct {
	Rootfs   string   // root.path: a directory the runtime can reach
	Overlay  *Overlay // nil: Rootfs is the root filesystem itself
	Hostname string
	Args     []string
	Env      []string
	Cwd      string
	UID, GID uint32
	// Mounts are the run's binds (input, output, scratch, volume) and
	// tmpfs (tmp), in order.
	Mounts []core.RunMount
	// UIDMappings and GIDMappings map container ids to host ids; both
	// empty means no user namespace (never for runc; see RootIDMap and RootlessIDMap).
	UIDMappings []specs.LinuxIDMapping
	GIDMappings []specs.LinuxIDMapping
	// Limits are applied as cgroup limits when CgroupsPath is set.
	Limits      core.RunLimits
	CgroupsPath string
	// Devices are the edits of the run's CDI devices; nil: none. Their
	// environment is already in Env.
	Devices *core.DeviceEdits
}

// Spec returns the OCI runtime spec of the sandbox:
// user, network, pid, ipc, uts, mount and cgroup namespaces; a read-only
// root; no capabilities; no new privileges; runc's masked and read-only
// /proc and /sys paths; the seccomp deny-list of SeccompProfile; binds
// nosuid and nodev, inputs read-only. It is pure: the same options give
// the same spec, byte for byte once marshalled.
func Spec(o SpecOptions) (*specs.Spec, error) {
	if o.Rootfs == "" || !path.IsAbs(o.Cwd) || len(o.Args) == 0 {
		return nil, fmt.Errorf("runtime spec: %w: need a rootfs, an absolute working directory and a command", core.ErrInvalid)
	}
	empty := []string{}
	s := &specs.Spec{
		Version: SpecVersion,
		Process: &specs.Process{
			Terminal: false,
			User:     specs.User{UID: o.UID, GID: o.GID},
			Args:     o.Args,
			Env:      o.Env,
			Cwd:      o.Cwd,
			// Present and empty: runc drops every capability, the
			// bounding set too (a missing field would keep runc's defaults).
			Capabilities: &specs.LinuxCapabilities{Bounding: empty, Effective: empty, Inheritable: empty, Permitted: empty, Ambient: empty},
			Rlimits: []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024},
				{Type: "RLIMIT_CORE", Hard: 0, Soft: 0},
			},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: o.Rootfs, Readonly: true},
		Hostname: o.Hostname,
		Mounts:   baseMounts(o),
		Linux: &specs.Linux{
			UIDMappings: o.UIDMappings,
			GIDMappings: o.GIDMappings,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.NetworkNamespace}, // new and empty: runc brings up lo only
				{Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.MountNamespace},
				{Type: specs.CgroupNamespace},
			},
			MaskedPaths:   maskedPaths,
			ReadonlyPaths: readonlyPaths,
			Seccomp:       SeccompProfile(),
		},
	}
	if len(o.UIDMappings) > 0 {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	}
	for _, m := range o.Mounts {
		mt, err := userMount(m)
		if err != nil {
			return nil, err
		}
		s.Mounts = append(s.Mounts, mt)
	}
	if o.CgroupsPath != "" {
		s.Linux.CgroupsPath = o.CgroupsPath
		s.Linux.Resources = resources(o.Limits)
	}
	if err := applyDevices(s, o.Devices); err != nil {
		return nil, err
	}
	return s, nil
}

func baseMounts(o SpecOptions) []specs.Mount {
	var ms []specs.Mount
	if ov := o.Overlay; ov != nil {
		ms = append(ms, specs.Mount{Destination: "/", Type: "overlay", Source: "overlay",
			Options: []string{"lowerdir=" + ov.Lower, "upperdir=" + ov.Upper, "workdir=" + ov.Work}})
	}
	return append(ms,
		specs.Mount{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		specs.Mount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		specs.Mount{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		specs.Mount{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
	)
}

// userMount is one of the run's mounts: binds are nosuid and nodev, inputs
// read-only; tmp is a tmpfs everyone may write (sticky).
func userMount(m core.RunMount) (specs.Mount, error) {
	if !path.IsAbs(m.Target) {
		return specs.Mount{}, fmt.Errorf("runtime spec: %w: mount target %q is not absolute", core.ErrInvalid, m.Target)
	}
	if m.Kind == core.MountTmp {
		opts := []string{"nosuid", "nodev", "mode=1777"}
		if m.Size > 0 {
			opts = append(opts, "size="+strconv.FormatInt(m.Size, 10))
		}
		return specs.Mount{Destination: m.Target, Type: "tmpfs", Source: "tmpfs", Options: opts}, nil
	}
	if !path.IsAbs(m.Source) {
		return specs.Mount{}, fmt.Errorf("runtime spec: %w: %s mount %s has no absolute host path (%q)", core.ErrInvalid, m.Kind, m.Target, m.Source)
	}
	rw := "rw"
	if m.ReadOnly {
		rw = "ro"
	}
	return specs.Mount{Destination: m.Target, Type: "bind", Source: m.Source, Options: []string{"rbind", rw, "nosuid", "nodev"}}, nil
}

func resources(l core.RunLimits) *specs.LinuxResources {
	r := &specs.LinuxResources{}
	if l.MemoryBytes > 0 {
		mem := l.MemoryBytes
		r.Memory = &specs.LinuxMemory{Limit: &mem, Swap: &mem} // no swap beyond the limit
	}
	if l.Pids > 0 {
		pids := l.Pids
		r.Pids = &specs.LinuxPids{Limit: &pids}
	}
	if l.CPUs > 0 {
		period := uint64(100000)
		quota := int64(l.CPUs * float64(period))
		r.CPU = &specs.LinuxCPU{Period: &period, Quota: &quota}
	}
	return r
}

// maskedPaths and readonlyPaths are runc's defaults (runc spec).
var maskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
	"/sys/firmware", "/sys/devices/virtual/powercap",
}

var readonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// DeniedSyscalls are refused with EPERM inside the sandbox: at least what
// Docker's default profile denies to a container without capabilities —
// mounting, tracing, keyrings, BPF, namespaces, kernel modules, swapping,
// rebooting, clock setting, handles to host files, perf, io_uring, NUMA
// memory policy, the kernel log, chroot, host and domain names. personality
// and socket are refused for some arguments only (see SeccompProfile).
var DeniedSyscalls = []string{
	"_sysctl", "acct", "add_key", "adjtimex", "bpf", "chroot", "clock_adjtime", "clock_settime",
	"create_module", "delete_module", "fanotify_init", "finit_module", "fsconfig", "fsmount",
	"fsopen", "fspick", "get_kernel_syms", "get_mempolicy", "init_module", "io_uring_enter",
	"io_uring_register", "io_uring_setup", "ioperm", "iopl", "kcmp", "kexec_file_load",
	"kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount", "mount_setattr", "move_mount",
	"move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at", "open_tree",
	"perf_event_open", "pivot_root", "process_vm_readv", "process_vm_writev", "ptrace",
	"query_module", "quotactl", "quotactl_fd", "reboot", "request_key", "set_mempolicy",
	"setdomainname", "sethostname", "setns", "settimeofday", "stime", "swapoff", "swapon",
	"sysfs", "syslog", "umount", "umount2", "unshare", "uselib", "userfaultfd", "ustat",
	"vhangup", "vm86", "vm86old",
}

// AllowedPersonalities are the personality(2) arguments Docker's default
// profile allows: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32 and
// the query 0xffffffff. Every other argument is refused with EPERM.
var AllowedPersonalities = []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

// afVsock is AF_VSOCK: socket(2) in that family is refused, as Docker does.
const afVsock = 40

// personalityDenials are the seccomp rules that refuse personality(2) for
// every argument outside AllowedPersonalities. runc ORs the conditions of
// one rule that test the same argument, so "not one of these values" is
// written as a union of one-condition rules, each a bit pattern no allowed
// value has:
//   - the argument does not fit in 32 bits;
//   - bit b is set and bit c is clear, for b, c consecutive in a cycle over
//     the 30 bits no allowed value but 0xffffffff sets (all but 3 and 17): a
//     value that sets some but not all of these 30 bits matches one of them;
//   - bit 0 is set and bit 3, or bit 17, is clear: a value that sets all 30
//     bits but is not 0xffffffff.
//
// A value that sets none of the 30 bits is 0x0, 0x8, 0x20000 or 0x20008.
// TestPersonalityRules checks the union against AllowedPersonalities.
func personalityDenials() []specs.LinuxSeccompArg {
	args := []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpGreaterThan}}
	var free []uint
	for b := uint(0); b < 32; b++ {
		if b != 3 && b != 17 {
			free = append(free, b)
		}
	}
	setClear := func(set, clear uint) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: 0, Value: 1<<set | 1<<clear, ValueTwo: 1 << set, Op: specs.OpMaskedEqual}
	}
	for i, b := range free {
		args = append(args, setClear(b, free[(i+1)%len(free)]))
	}
	return append(args, setClear(0, 3), setClear(0, 17))
}

// PersonalityDenied says whether the seccomp rules of SeccompProfile refuse
// personality(arg): it evaluates them as runc installs them (any matching
// rule refuses). Tests use it.
func PersonalityDenied(sc *specs.LinuxSeccomp, arg uint64) bool {
	for _, r := range sc.Syscalls {
		if len(r.Names) != 1 || r.Names[0] != "personality" || r.Action != specs.ActErrno {
			continue
		}
		for _, a := range r.Args {
			if a.Index == 0 && argMatches(a, arg) {
				return true
			}
		}
	}
	return false
}

func argMatches(a specs.LinuxSeccompArg, v uint64) bool {
	switch a.Op {
	case specs.OpMaskedEqual:
		return v&a.Value == a.ValueTwo
	case specs.OpGreaterThan:
		return v > a.Value
	case specs.OpEqualTo:
		return v == a.Value
	}
	return false
}

// cloneNamespaceFlags are the clone flags that create namespaces; clone with
// any of them is refused like unshare.
var cloneNamespaceFlags = []uint64{
	0x00020000, // CLONE_NEWNS
	0x02000000, // CLONE_NEWCGROUP
	0x04000000, // CLONE_NEWUTS
	0x08000000, // CLONE_NEWIPC
	0x10000000, // CLONE_NEWUSER
	0x20000000, // CLONE_NEWPID
	0x40000000, // CLONE_NEWNET
}

// SeccompProfile is the filter of every run: allow by default, deny
// DeniedSyscalls with EPERM, clone with a namespace flag with EPERM,
// personality outside AllowedPersonalities and socket(AF_VSOCK) with EPERM,
// and
// clone3 with ENOSYS (its flags live in memory a filter cannot read; libc
// then falls back to clone), for the three x86 ABIs (and the host's others
// through runc's native arch).
func SeccompProfile() *specs.LinuxSeccomp {
	eperm := uint(1)
	enosys := uint(38)
	names := append([]string(nil), DeniedSyscalls...)
	sort.Strings(names)
	sc := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: names, Action: specs.ActErrno, ErrnoRet: &eperm},
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
		},
	}
	for _, f := range cloneNamespaceFlags {
		sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{
			Names: []string{"clone"}, Action: specs.ActErrno, ErrnoRet: &eperm,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: f, ValueTwo: f, Op: specs.OpMaskedEqual}},
		})
	}
	sc.Syscalls = append(sc.Syscalls,
		specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: &eperm, Args: personalityDenials()},
		specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActErrno, ErrnoRet: &eperm,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: afVsock, Op: specs.OpEqualTo}}},
	)
	return sc
}
