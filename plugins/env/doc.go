// Package env is the DSI Environment, Hostname and SystemKernel plugins: it
// records who runs a container, on which host, and the kernel and system
// that host had (release, OS, CPU, memory, /proc/cmdline, kernel config,
// sysctls, loaded modules, the container runtime), and compares two
// SystemKernel snapshots to say what drifted between runs.
//
// Everything is read in Go from /proc, /sys and /etc: no shell, no external
// commands (the runtime's version is the caller's to ask). A source that
// cannot be read is named in SystemKernel.Errors; collection never aborts.
// Values that change on every read (counters, random UUIDs, per-boot keys)
// are left out, so runs on one unchanged host share one snapshot.
//
// The record types live in core (drivers store them); this package aliases
// them. It does not store anything itself.
package env
