package cdi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
	cdilib "tags.cncf.io/container-device-interface/pkg/cdi"
	cdispec "tags.cncf.io/container-device-interface/specs-go"

	"github.com/runprov/runprov/core"
)

// EnvSpecDirs names the spec directories (colon-separated) instead of the
// standard ones.
const EnvSpecDirs = "RUNPROV_CDI_SPEC_DIRS"

// DefaultDirs are CDI's standard directories: static specs, then generated.
var DefaultDirs = []string{cdilib.DefaultStaticDir, cdilib.DefaultDynamicDir}

// DirsFromEnv returns the directories of RUNPROV_CDI_SPEC_DIRS, else DefaultDirs.
func DirsFromEnv() []string {
	var dirs []string
	for _, d := range strings.Split(os.Getenv(EnvSpecDirs), ":") {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) == 0 {
		return DefaultDirs
	}
	return dirs
}

// Resolver finds devices in the CDI specs of Dirs.
type Resolver struct {
	Dirs []string // in increasing priority, as CDI orders them
	// AllowHooks lets a spec's hooks through; they run as root on the host,
	// so only the site policy sets it.
	AllowHooks bool
}

// Resolve returns the merged edits of the devices, in the order named, and
// the spec files they came from with their sha256. A device no spec
// declares is a *core.UnknownDeviceError (ErrNotFound); a spec with hooks,
// unless allowed, wraps core.ErrUnsafe; a device node that is missing on
// the host wraps core.ErrNotFound.
func (r *Resolver) Resolve(ctx context.Context, names []string) (*core.DeviceEdits, error) {
	cache, err := cdilib.NewCache(cdilib.WithSpecDirs(r.Dirs...), cdilib.WithAutoRefresh(false))
	if err != nil {
		return nil, fmt.Errorf("read cdi specs: %w", err)
	}
	ed := &core.DeviceEdits{Names: []string{}, Specs: []core.CDISpec{}}
	specs := map[string]bool{}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dev := cache.GetDevice(name)
		if dev == nil {
			return nil, unknown(cache, name, r.Dirs)
		}
		spec := dev.GetSpec()
		path := spec.GetPath()
		// Spec-wide edits apply once, with the first device of the spec.
		var edits []cdispec.ContainerEdits
		if !specs[path] {
			specs[path] = true
			sum, err := core.FileSHA256(path)
			if err != nil {
				return nil, fmt.Errorf("cdi spec %s: %w", path, err)
			}
			ed.Specs = append(ed.Specs, core.CDISpec{Path: path, SHA256: sum})
			edits = append(edits, spec.ContainerEdits)
		}
		edits = append(edits, dev.ContainerEdits)
		for _, e := range edits {
			if err := r.add(ed, e, name, path); err != nil {
				return nil, err
			}
		}
		ed.Names = append(ed.Names, name)
	}
	return ed, nil
}

// add merges one set of container edits into ed.
func (r *Resolver) add(ed *core.DeviceEdits, e cdispec.ContainerEdits, name, path string) error {
	if len(e.Hooks) > 0 && !r.AllowHooks {
		return fmt.Errorf("device %s: %w: its cdi spec %s has hooks, which run as root on the host, and the site policy does not allow them (allow_cdi_hooks)", name, core.ErrUnsafe, path)
	}
	if e.IntelRdt != nil || len(e.NetDevices) > 0 || len(e.AdditionalGIDs) > 0 {
		return fmt.Errorf("device %s: %w: its cdi spec %s asks for intelRdt, netDevices or additionalGids, which the sandbox does not give", name, core.ErrUnsupported, path)
	}
	ed.Env = append(ed.Env, e.Env...)
	for _, d := range e.DeviceNodes {
		n, err := node(d)
		if err != nil {
			return fmt.Errorf("device %s (cdi spec %s): %w", name, path, err)
		}
		ed.Nodes = append(ed.Nodes, n)
	}
	for _, m := range e.Mounts {
		ed.Mounts = append(ed.Mounts, core.DeviceMount{HostPath: m.HostPath, ContainerPath: m.ContainerPath, Type: m.Type, Options: m.Options})
	}
	for _, h := range e.Hooks {
		ed.Hooks = append(ed.Hooks, core.DeviceHook{HookName: h.HookName, Path: h.Path, Args: h.Args, Env: h.Env, Timeout: h.Timeout})
	}
	return nil
}

// node fills what the spec leaves out from the host's node, as CDI does.
func node(d *cdispec.DeviceNode) (core.DeviceNode, error) {
	n := core.DeviceNode{Path: d.Path, HostPath: d.HostPath, Type: d.Type, Major: d.Major, Minor: d.Minor, Permissions: d.Permissions}
	if n.HostPath == "" {
		n.HostPath = n.Path
	}
	if n.Permissions == "" {
		n.Permissions = "rwm"
	}
	var st unix.Stat_t
	if err := unix.Stat(n.HostPath, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return n, fmt.Errorf("device node %s: %w: the host has no %s", n.Path, core.ErrNotFound, n.HostPath)
		}
		return n, fmt.Errorf("device node %s: %w", n.HostPath, err)
	}
	typ := ""
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return n, fmt.Errorf("device node %s: %w: host path %s is not a character or block device", n.Path, core.ErrInvalid, n.HostPath)
	}
	if n.Type == "" || n.Type == "u" {
		n.Type = typ
	}
	if n.Major == 0 && n.Minor == 0 {
		n.Major, n.Minor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	}
	// A bind shows the host's node, whatever the spec says it is.
	if n.Type != typ || n.Major != int64(unix.Major(st.Rdev)) || n.Minor != int64(unix.Minor(st.Rdev)) {
		return n, fmt.Errorf("device node %s: %w: the spec says %s %d:%d but the host's %s is %s %d:%d", n.Path, core.ErrInvalid,
			n.Type, n.Major, n.Minor, n.HostPath, typ, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return n, nil
}

// unknown names the devices the specs offer, and the specs that failed.
func unknown(cache *cdilib.Cache, name string, dirs []string) error {
	known := cache.ListDevices()
	sort.Strings(known)
	err := error(&core.UnknownDeviceError{Name: name, Known: known, Dirs: dirs})
	var bad []string
	for path, errs := range cache.GetErrors() {
		if len(errs) > 0 {
			bad = append(bad, filepath.Base(path)+": "+errors.Join(errs...).Error())
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		err = fmt.Errorf("%w; specs that could not be read: %s", err, strings.Join(bad, "; "))
	}
	return err
}
