package core

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
)

// The DSI Environment, Hostname and SystemKernel records. They live in core
// so drivers can store them without importing plugins; plugins/env collects
// them (and aliases these names).

// Environment is DSI's Environment + Hostname: who runs, where.
type Environment struct {
	UID      int    `json:"uid"`
	GID      int    `json:"gid"` // effective gid
	User     string `json:"user"`
	Groups   []int  `json:"groups"` // supplementary gids, sorted
	Hostname string `json:"hostname"`
}

// CanonicalJSON is the JSON the SHA256 is taken of: groups sorted, never null.
func (e Environment) CanonicalJSON() []byte {
	e.Groups = slices.Sorted(slices.Values(e.Groups))
	if e.Groups == nil {
		e.Groups = []int{}
	}
	b, err := json.Marshal(e)
	if err != nil { // ints and strings always marshal
		panic(err)
	}
	return b
}

// SHA256 is the hex sha256 of CanonicalJSON: runs of one user on one host
// share one environments row.
func (e Environment) SHA256() string { return hexSum(e.CanonicalJSON()) }

// RuntimeInfo names the container runtime and its version ("runc", "1.1.5").
type RuntimeInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// String is "runc 1.1.5", or the name alone when the version is unknown.
func (r RuntimeInfo) String() string {
	if r.Version == "" {
		return r.Name
	}
	return r.Name + " " + r.Version
}

// SystemKernel is DSI's SystemKernel snapshot: the kernel and system a run
// saw. It holds only values that stay put between runs on one host, so
// identical hosts give identical snapshots (and one row in the store).
type SystemKernel struct {
	KernelRelease string      `json:"kernel_release"`
	KernelVersion string      `json:"kernel_version"`
	OSRelease     string      `json:"os_release"` // PRETTY_NAME of /etc/os-release
	Arch          string      `json:"arch"`       // uname -m: x86_64, aarch64, ...
	CPUModel      string      `json:"cpu_model"`
	CPUCount      int         `json:"cpu_count"` // online CPUs of the host
	MemTotalBytes int64       `json:"mem_total_bytes"`
	Runtime       RuntimeInfo `json:"runtime"`
	Cmdline       string      `json:"cmdline"`
	// KernelConfig maps CONFIG_X to its value as the config file spells it;
	// options that are "not set" are absent.
	KernelConfig map[string]string `json:"kernel_config,omitempty"`
	// Sysctls maps dotted names (vm.swappiness) to values, without the
	// counters and per-boot values that change on every read.
	Sysctls map[string]string `json:"sysctls,omitempty"`
	Modules []string          `json:"modules,omitempty"` // loaded modules, sorted
	GPU     *GPUInfo          `json:"gpu,omitempty"`
	// Errors maps a source ("kernel_config", "sysctls", ...) to why it could
	// not be read; the rest of the snapshot is still good.
	Errors map[string]string `json:"errors,omitempty"`
}

// CanonicalJSON is the JSON the SHA256 is taken of and the store keeps:
// map keys sorted (encoding/json does that), modules sorted, empty
// collections omitted.
func (k *SystemKernel) CanonicalJSON() []byte {
	c := *k
	if !slices.IsSorted(c.Modules) {
		c.Modules = slices.Sorted(slices.Values(c.Modules))
	}
	b, err := json.Marshal(&c)
	if err != nil { // strings, ints and maps of strings always marshal
		panic(err)
	}
	return b
}

// SHA256 is the hex sha256 of CanonicalJSON: identical hosts, identical hash.
func (k *SystemKernel) SHA256() string { return hexSum(k.CanonicalJSON()) }

func hexSum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
