package producer

import (
	"context"
	"fmt"
	"os"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/runtime"
	"github.com/runprov/runprov/runfile"
)

// DeviceResolver finds CDI devices on this host (drivers/cdi).
type DeviceResolver interface {
	// Resolve returns the merged container edits of the named devices and
	// the spec files they came from. A device no spec declares is a
	// *core.UnknownDeviceError; a spec the site policy forbids (hooks)
	// wraps core.ErrUnsafe.
	Resolve(ctx context.Context, names []string) (*core.DeviceEdits, error)
}

// devices resolves the Runfile's DEVICE lines and --device names; nil when
// there are none.
func (p *Producer) devices(ctx context.Context, rf *runfile.File, opts Options, rt runtime.Runtime) (*core.DeviceEdits, error) {
	for _, n := range opts.Devices {
		if msg := runfile.CheckDeviceName(n); msg != "" {
			return nil, fmt.Errorf("--device %s: %w: %s", n, core.ErrInvalid, msg)
		}
	}
	names := rf.DeviceNames(opts.Devices...)
	if len(names) == 0 {
		return nil, nil
	}
	if !rt.Guarantees().Devices {
		return nil, fmt.Errorf("--runtime %s: %w: it cannot give the run CDI devices (%s); run with --runtime runc", rt.Name(), core.ErrUnsupported, names[0])
	}
	if p.Devices == nil {
		return nil, fmt.Errorf("device %s: %w: this runprov has no CDI resolver", names[0], core.ErrUnsupported)
	}
	return p.Devices.Resolve(ctx, names)
}

// deviceTargets are the mount points of a run's devices in its root.
func deviceTargets(d *core.DeviceEdits) []target {
	if d == nil {
		return nil
	}
	var ts []target
	for _, n := range d.Nodes {
		ts = append(ts, target{Path: n.Path, File: true})
	}
	for _, m := range d.Mounts {
		fi, err := os.Stat(m.HostPath)
		ts = append(ts, target{Path: m.ContainerPath, File: err == nil && !fi.IsDir()})
	}
	return ts
}
