package runtime

import (
	"fmt"
	"path"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/runprov/runprov/core"
)

// applyDevices adds the edits of a run's CDI devices to s.
//
// Device nodes become binds of the host's nodes, not linux.devices: in a
// user namespace runc 1.1 cannot mknod and binds linux.devices[].path from
// the host instead, which is wrong when a spec puts a node elsewhere (host
// /dev/nvidia0 at /dev/nvidia0 works, host /dev/null at /dev/xnull does
// not). A bind works with or without a user namespace. Only device nodes
// enter the device cgroup's allow list, after a deny-all; runc appends its
// default devices (null, zero, tty, ...) after these.
func applyDevices(s *specs.Spec, d *core.DeviceEdits) error {
	if d == nil {
		return nil
	}
	rules := []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	for _, n := range d.Nodes {
		if !path.IsAbs(n.Path) || !path.IsAbs(n.HostPath) {
			return fmt.Errorf("runtime spec: %w: device node %q (host %q) is not an absolute path", core.ErrInvalid, n.Path, n.HostPath)
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: n.Path, Type: "bind", Source: n.HostPath, Options: []string{"bind", "rw", "nosuid", "noexec"}})
		major, minor := n.Major, n.Minor
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: n.Type, Major: &major, Minor: &minor, Access: n.Permissions})
	}
	for _, m := range d.Mounts {
		if !path.IsAbs(m.ContainerPath) || !path.IsAbs(m.HostPath) {
			return fmt.Errorf("runtime spec: %w: cdi mount %q (host %q) is not an absolute path", core.ErrInvalid, m.ContainerPath, m.HostPath)
		}
		typ, opts := m.Type, slices.Clone(m.Options)
		if typ == "" {
			typ = "bind"
		}
		if !slices.Contains(opts, "nosuid") {
			opts = append(opts, "nosuid")
		}
		if typ == "bind" && !slices.Contains(opts, "bind") && !slices.Contains(opts, "rbind") {
			opts = append(opts, "bind")
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: m.ContainerPath, Type: typ, Source: m.HostPath, Options: opts})
	}
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	s.Linux.Resources.Devices = rules
	return applyHooks(s, d.Hooks)
}

// applyHooks adds CDI hooks; the resolver lets them through only when the
// site policy allows them.
func applyHooks(s *specs.Spec, hooks []core.DeviceHook) error {
	if len(hooks) == 0 {
		return nil
	}
	if s.Hooks == nil {
		s.Hooks = &specs.Hooks{}
	}
	for _, h := range hooks {
		oh := specs.Hook{Path: h.Path, Args: h.Args, Env: h.Env, Timeout: h.Timeout}
		switch h.HookName {
		case "prestart":
			//lint:ignore SA1019 CDI specs may still name prestart; the spec's hook is kept as written
			s.Hooks.Prestart = append(s.Hooks.Prestart, oh)
		case "createRuntime":
			s.Hooks.CreateRuntime = append(s.Hooks.CreateRuntime, oh)
		case "createContainer":
			s.Hooks.CreateContainer = append(s.Hooks.CreateContainer, oh)
		case "startContainer":
			s.Hooks.StartContainer = append(s.Hooks.StartContainer, oh)
		case "poststart":
			s.Hooks.Poststart = append(s.Hooks.Poststart, oh)
		case "poststop":
			s.Hooks.Poststop = append(s.Hooks.Poststop, oh)
		default:
			return fmt.Errorf("runtime spec: %w: cdi hook %q has unknown hook name %q", core.ErrInvalid, h.Path, h.HookName)
		}
	}
	return nil
}
