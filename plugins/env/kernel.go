package env

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Error keys of SystemKernel.Errors, one per source.
const (
	SourceUname        = "uname"
	SourceOSRelease    = "os_release"
	SourceCPUInfo      = "cpuinfo"
	SourceCPUCount     = "cpu_count"
	SourceMemInfo      = "meminfo"
	SourceCmdline      = "cmdline"
	SourceKernelConfig = "kernel_config"
	SourceSysctls      = "sysctls"
	SourceModules      = "modules"
)

// SysctlBudget bounds the walk of /proc/sys. The walk takes about 30 ms on
// a 6.x kernel with ~1300 entries; past the budget the sysctls are dropped
// and the reason recorded, so a stuck file can never hold up a run.
const SysctlBudget = 500 * time.Millisecond

// host is where the sources are read from: "/" in production, a fake tree
// in tests of the error paths.
type host struct {
	root     string
	uname    bool // ask the kernel (uname(2)) rather than root/proc/sys/kernel
	sysctlTO time.Duration
}

var realHost = host{root: "/", uname: true, sysctlTO: SysctlBudget}

func (h host) path(p string) string { return filepath.Join(h.root, p) }

// CollectSystemKernel reads the SystemKernel snapshot of this host; rt is
// the container runtime as the caller found it. It never fails: a source
// that cannot be read is named in Errors and its fields stay empty. ctx
// cancels the sysctl walk, the only part that may take a while.
func CollectSystemKernel(ctx context.Context, rt RuntimeInfo) *SystemKernel {
	return realHost.collect(ctx, rt)
}

func (h host) collect(ctx context.Context, rt RuntimeInfo) *SystemKernel {
	k := &SystemKernel{Runtime: rt}
	errs := map[string]string{}
	fail := func(src string, err error) { errs[src] = err.Error() }

	// The walk is the slow part: run it beside the rest.
	type sysctlResult struct {
		m   map[string]string
		err error
	}
	sysctls := make(chan sysctlResult, 1)
	go func() {
		m, err := collectSysctls(ctx, h.path("proc/sys"), h.sysctlTO)
		sysctls <- sysctlResult{m, err}
	}()

	if err := h.readUname(k); err != nil {
		fail(SourceUname, err)
	}
	if v, err := readOSRelease(h.path("etc/os-release"), h.path("usr/lib/os-release")); err != nil {
		fail(SourceOSRelease, err)
	} else {
		k.OSRelease = v
	}
	if v, err := readCPUModel(h.path("proc/cpuinfo")); err != nil {
		fail(SourceCPUInfo, err)
	} else {
		k.CPUModel = v
	}
	if v, err := readCPUCount(h.path("sys/devices/system/cpu/online")); err != nil {
		fail(SourceCPUCount, err)
	} else {
		k.CPUCount = v
	}
	if v, err := readMemTotal(h.path("proc/meminfo")); err != nil {
		fail(SourceMemInfo, err)
	} else {
		k.MemTotalBytes = v
	}
	if b, err := os.ReadFile(h.path("proc/cmdline")); err != nil {
		fail(SourceCmdline, err)
	} else {
		k.Cmdline = clean(string(b))
	}
	if k.KernelRelease != "" {
		if v, err := readKernelConfig(h.path("proc/config.gz"), h.path("boot/config-"+k.KernelRelease)); err != nil {
			fail(SourceKernelConfig, err)
		} else {
			k.KernelConfig = v
		}
	} else {
		fail(SourceKernelConfig, errors.New("kernel release unknown, cannot find /boot/config-RELEASE"))
	}
	if v, err := readModules(h.path("proc/modules"), k.KernelConfig); err != nil {
		fail(SourceModules, err)
	} else {
		k.Modules = v
	}

	g, err := CollectGPU(h.root)
	if err != nil {
		fail(SourceGPU, err)
	}
	k.GPU = g
	r := <-sysctls
	if r.err != nil {
		fail(SourceSysctls, r.err)
	}
	if len(r.m) > 0 {
		k.Sysctls = r.m
	}
	if len(errs) > 0 {
		k.Errors = errs
	}
	return k
}

// readUname fills the kernel release, version and machine from uname(2), or
// from /proc/sys/kernel when h is a fake tree.
func (h host) readUname(k *SystemKernel) error {
	if h.uname {
		var u unix.Utsname
		if err := unix.Uname(&u); err == nil {
			k.KernelRelease = clean(unix.ByteSliceToString(u.Release[:]))
			k.KernelVersion = clean(unix.ByteSliceToString(u.Version[:]))
			k.Arch = clean(unix.ByteSliceToString(u.Machine[:]))
			return nil
		}
	}
	var errs []error
	for _, f := range []struct {
		dst  *string
		name string
	}{{&k.KernelRelease, "osrelease"}, {&k.KernelVersion, "version"}, {&k.Arch, "arch"}} {
		b, err := os.ReadFile(h.path("proc/sys/kernel/" + f.name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		*f.dst = clean(string(b))
	}
	return errors.Join(errs...)
}

// clean trims surrounding white space and makes s valid UTF-8, so the
// snapshot's JSON survives a round trip through the store byte for byte.
func clean(s string) string {
	return strings.ToValidUTF8(strings.TrimSpace(s), "\uFFFD")
}

// readOSRelease returns PRETTY_NAME from the first os-release file that
// exists (os-release(5): /etc/os-release, else /usr/lib/os-release).
func readOSRelease(paths ...string) (string, error) {
	var firstErr error
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		v, ok := parseOSRelease(b, "PRETTY_NAME")
		if !ok {
			return "", fmt.Errorf("%s: no PRETTY_NAME", p)
		}
		return v, nil
	}
	return "", firstErr
}

// parseOSRelease returns the value of key in an os-release file: shell-like
// KEY=VALUE lines whose value may be quoted with " or ' and use \ escapes.
func parseOSRelease(b []byte, key string) (string, bool) {
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || k != key {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			q := v[0]
			v = v[1 : len(v)-1]
			if q == '"' {
				var sb strings.Builder
				for i := 0; i < len(v); i++ {
					if v[i] == '\\' && i+1 < len(v) {
						i++
					}
					sb.WriteByte(v[i])
				}
				v = sb.String()
			}
		}
		return clean(v), true
	}
	return "", false
}

// readCPUModel returns the first CPU's model from /proc/cpuinfo. x86 says
// "model name"; other architectures use other keys, tried in order.
func readCPUModel(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if v := parseCPUModel(b); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("%s: no CPU model line", path)
}

func parseCPUModel(b []byte) string {
	fields := map[string]string{}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if _, seen := fields[k]; !seen {
			fields[k] = clean(v)
		}
	}
	for _, k := range []string{"model name", "Model", "Hardware", "cpu model", "cpu"} {
		if v := fields[k]; v != "" {
			return v
		}
	}
	if impl, part := fields["CPU implementer"], fields["CPU part"]; impl != "" { // arm64
		return "CPU implementer " + impl + " part " + part
	}
	return ""
}

// readCPUCount counts the host's online CPUs from a cpu list ("0-3,8").
// It is the machine's count, not this process's affinity.
func readCPUCount(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if n := runtime.NumCPU(); n > 0 {
			return n, nil // sysfs not mounted: the scheduler's count is the best left
		}
		return 0, err
	}
	n, err := parseCPUList(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

func parseCPUList(s string) (int, error) {
	n := 0
	for part := range strings.SplitSeq(s, ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0, fmt.Errorf("bad cpu list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0, fmt.Errorf("bad cpu list %q", s)
			}
		}
		n += b - a + 1
	}
	if n == 0 {
		return 0, fmt.Errorf("empty cpu list")
	}
	return n, nil
}

// readMemTotal returns MemTotal of /proc/meminfo in bytes.
func readMemTotal(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			break
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		return n, nil
	}
	return 0, fmt.Errorf("%s: no MemTotal line", path)
}

// readKernelConfig reads the kernel's build configuration from gz
// (/proc/config.gz, CONFIG_IKCONFIG_PROC) or else plain (/boot/config-RELEASE).
func readKernelConfig(gz, plain string) (map[string]string, error) {
	f, gzErr := os.Open(gz)
	if gzErr == nil {
		defer f.Close()
		zr, err := gzip.NewReader(bufio.NewReader(f))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", gz, err)
		}
		m, err := parseKernelConfig(zr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", gz, err)
		}
		return m, nil
	}
	b, err := os.ReadFile(plain)
	if err != nil {
		return nil, fmt.Errorf("no kernel config: %v; %v", gzErr, err)
	}
	m, err := parseKernelConfig(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", plain, err)
	}
	return m, nil
}

// parseKernelConfig keeps CONFIG_X=VALUE lines; "# CONFIG_X is not set"
// and comments are left out (absent means not set).
func parseKernelConfig(r io.Reader) (map[string]string, error) {
	m := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("CONFIG_")) {
			continue
		}
		k, v, ok := bytes.Cut(line, []byte("="))
		if !ok {
			continue
		}
		m[string(k)] = clean(string(v))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, errors.New("no CONFIG_ lines")
	}
	return m, nil
}

// readModules returns the names of the loaded modules, sorted. A kernel
// built without module support has no /proc/modules: that is no modules,
// not an error, when its config says so.
func readModules(path string, config map[string]string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && config != nil && config["CONFIG_MODULES"] == "" {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	return parseModules(f)
}

// parseModules reads /proc/modules lines ("name size refs deps state addr").
func parseModules(r io.Reader) ([]string, error) {
	var mods []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, _, _ := strings.Cut(sc.Text(), " ")
		if name = strings.TrimSpace(name); name != "" {
			mods = append(mods, clean(name))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	slices.Sort(mods)
	return slices.Compact(mods), nil
}
