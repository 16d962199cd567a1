package core

import (
	"fmt"
	"strings"
)

// CDISpec is a CDI spec file a run's devices came from.
type CDISpec struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"` // hex, of the file as read before the run
}

// DeviceNode is a device node a CDI spec gives the container: the host's
// node HostPath appears at Path, and only these enter the device cgroup's
// allow list.
type DeviceNode struct {
	Path        string `json:"path"`      // in the container
	HostPath    string `json:"host_path"` // on the host; Path when the spec gives none
	Type        string `json:"type"`      // "c" or "b"
	Major       int64  `json:"major"`
	Minor       int64  `json:"minor"`
	Permissions string `json:"permissions"` // cgroup access: some of "rwm"
}

// DeviceMount is a bind a CDI spec adds (driver libraries, sockets).
type DeviceMount struct {
	HostPath      string   `json:"host_path"`
	ContainerPath string   `json:"container_path"`
	Type          string   `json:"type,omitempty"`
	Options       []string `json:"options,omitempty"`
}

// DeviceHook is an OCI hook a CDI spec asks for. Hooks run as root on the
// host, so a run gets them only when the site policy allows CDI hooks.
type DeviceHook struct {
	HookName string   `json:"hook_name"` // createRuntime, createContainer, startContainer, poststart, poststop, prestart
	Path     string   `json:"path"`
	Args     []string `json:"args,omitempty"`
	Env      []string `json:"env,omitempty"`
	Timeout  *int     `json:"timeout,omitempty"`
}

// DeviceEdits are the container edits of a run's CDI devices, merged in
// the order the devices were named.
type DeviceEdits struct {
	Names  []string      `json:"names"` // the devices, fully qualified
	Specs  []CDISpec     `json:"specs"` // the spec files they came from, by path
	Nodes  []DeviceNode  `json:"nodes,omitempty"`
	Mounts []DeviceMount `json:"mounts,omitempty"`
	Env    []string      `json:"env,omitempty"`
	Hooks  []DeviceHook  `json:"hooks,omitempty"`
}

// UnknownDeviceError is a device no CDI spec on the host declares. It
// matches ErrNotFound.
type UnknownDeviceError struct {
	Name  string
	Known []string // the devices the specs declare, sorted
	Dirs  []string // the spec directories searched
}

func (e *UnknownDeviceError) Error() string {
	known := "none"
	if len(e.Known) > 0 {
		known = strings.Join(e.Known, ", ")
	}
	return fmt.Sprintf("device %s: no CDI spec in %s declares it (devices this host offers: %s)", e.Name, strings.Join(e.Dirs, ", "), known)
}

// Is lets errors.Is(err, ErrNotFound) match.
func (e *UnknownDeviceError) Is(target error) bool { return target == ErrNotFound }
