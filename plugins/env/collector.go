package env

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/runprov/runprov/core"
)

// Table names the collectors fill.
const (
	TableEnvironment  = "environment"
	TableHostname     = "hostname"
	TableSystemKernel = "system_kernel"
)

// EnvironmentCollector is the DSI Environment plugin as a core.Collector:
// one row of who runs where, keyed by the Environment's SHA256.
type EnvironmentCollector struct{}

var (
	_ core.Collector = EnvironmentCollector{}
	_ core.Collector = HostnameCollector{}
	_ core.Collector = SystemKernelCollector{}
)

// Name implements core.Component.
func (EnvironmentCollector) Name() string { return TableEnvironment }

// Collect adds the "environment" table. A source that failed is named in
// the row's error column; Collect itself does not fail.
func (EnvironmentCollector) Collect(_ context.Context, col *core.Collection) error {
	e, err := CollectEnvironment()
	t := &core.Table{Name: TableEnvironment, Columns: []core.Column{
		{Name: "sha256", Type: core.TypeText},
		{Name: "uid", Type: core.TypeInt},
		{Name: "gid", Type: core.TypeInt},
		{Name: "user", Type: core.TypeText},
		{Name: "groups", Type: core.TypeJSON},
		{Name: "hostname", Type: core.TypeText},
		{Name: "error", Type: core.TypeText},
	}}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if err := t.Append(e.SHA256(), e.UID, e.GID, e.User, e.Groups, e.Hostname, msg); err != nil {
		return err
	}
	col.Add(t)
	return nil
}

// HostnameCollector is the DSI Hostname plugin: one row, the host's name.
type HostnameCollector struct{}

// Name implements core.Component.
func (HostnameCollector) Name() string { return TableHostname }

// Collect adds the "hostname" table. An unreadable hostname is an error:
// there is nothing else to record.
func (HostnameCollector) Collect(_ context.Context, col *core.Collection) error {
	e, err := CollectEnvironment()
	if e.Hostname == "" && err != nil {
		return err
	}
	t := &core.Table{Name: TableHostname, Columns: []core.Column{{Name: "hostname", Type: core.TypeText}}}
	if err := t.Append(e.Hostname); err != nil {
		return err
	}
	col.Add(t)
	return nil
}

// SystemKernelCollector is the DSI SystemKernel plugin: the key columns of
// the snapshot plus the whole snapshot as JSON, as DSI keeps it. Runtime is
// the container runtime the caller found (the collector runs nothing).
type SystemKernelCollector struct {
	Runtime RuntimeInfo
}

// Name implements core.Component.
func (SystemKernelCollector) Name() string { return TableSystemKernel }

// Collect adds the "system_kernel" table. Sources that failed are in the
// snapshot's errors; Collect itself does not fail.
func (c SystemKernelCollector) Collect(ctx context.Context, col *core.Collection) error {
	k := CollectSystemKernel(ctx, c.Runtime)
	snap := k.CanonicalJSON()
	t := &core.Table{Name: TableSystemKernel, Columns: []core.Column{
		{Name: "sha256", Type: core.TypeText},
		{Name: "kernel_release", Type: core.TypeText},
		{Name: "kernel_version", Type: core.TypeText},
		{Name: "os_release", Type: core.TypeText},
		{Name: "arch", Type: core.TypeText},
		{Name: "cpu_model", Type: core.TypeText},
		{Name: "cpu_count", Type: core.TypeInt},
		{Name: "mem_total_bytes", Type: core.TypeInt},
		{Name: "runtime_name", Type: core.TypeText},
		{Name: "runtime_version", Type: core.TypeText},
		{Name: "snapshot", Type: core.TypeJSON},
	}}
	err := t.Append(hexSHA256(snap), k.KernelRelease, k.KernelVersion, k.OSRelease, k.Arch, k.CPUModel,
		k.CPUCount, k.MemTotalBytes, k.Runtime.Name, k.Runtime.Version, json.RawMessage(snap))
	if err != nil {
		return err
	}
	col.Add(t)
	return nil
}

// hexSHA256 is the SHA256 of an already canonical snapshot, without
// marshalling it again.
func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
