package env

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/runprov/runprov/core"
)

// SourceGPU is the error key of SystemKernel.Errors for the GPU facts.
const SourceGPU = "gpu"

// AMD's PCI vendor id, as /sys/class/drm/card*/device/vendor spells it.
const amdVendor = "0x1002"

// The version line of the NVIDIA kernel module, proprietary or open:
// "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar ..."
// "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release Build ..."
var reNVIDIAVersion = core.LazyRegexp(`Kernel Module(?: for \S+)?\s+([0-9]+(?:\.[0-9]+)+)`)

// CollectGPU reads the GPU facts of the host whose filesystem is at root
// ("/" in production, a fixture tree in tests): NVIDIA from
// /proc/driver/nvidia, AMD from /sys/class/drm and /sys/module/amdgpu, and
// the device nodes in /dev. It returns nil when there are none; the error
// says what could not be read (the rest is still returned).
func CollectGPU(root string) (*core.GPUInfo, error) {
	g := &core.GPUInfo{}
	var errs []error
	if err := readNVIDIA(root, g); err != nil {
		errs = append(errs, err)
	}
	if err := readAMD(root, g); err != nil {
		errs = append(errs, err)
	}
	for _, pat := range []string{"dev/nvidia*", "dev/kfd"} {
		m, _ := filepath.Glob(filepath.Join(root, pat)) // only ErrBadPattern
		for _, p := range m {
			g.DevNodes = append(g.DevNodes, "/"+filepath.ToSlash(mustRel(root, p)))
		}
	}
	slices.Sort(g.DevNodes)
	slices.SortFunc(g.Devices, func(a, b core.GPUDevice) int {
		return strings.Compare(a.Vendor+" "+a.BusID, b.Vendor+" "+b.BusID)
	})
	if g.NVIDIADriver == "" && g.AMDGPUVersion == "" && len(g.Devices) == 0 && len(g.DevNodes) == 0 {
		g = nil
	}
	return g, errors.Join(errs...)
}

func mustRel(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil {
		return p
	}
	return r
}

// readNVIDIA reads the driver version and each GPU's information file.
func readNVIDIA(root string, g *core.GPUInfo) error {
	dir := filepath.Join(root, "proc/driver/nvidia")
	b, err := os.ReadFile(filepath.Join(dir, "version"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil // no NVIDIA driver loaded
	case err != nil:
		return err
	}
	if m := reNVIDIAVersion().FindSubmatch(b); m != nil {
		g.NVIDIADriver = string(m[1])
	} else {
		line, _, _ := bytes.Cut(b, []byte("\n"))
		g.NVIDIADriver = clean(string(line)) // an unknown layout: keep it whole
	}
	gpus, err := os.ReadDir(filepath.Join(dir, "gpus"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range gpus {
		info, err := os.ReadFile(filepath.Join(dir, "gpus", e.Name(), "information"))
		if err != nil {
			return err
		}
		fields := colonFields(info)
		d := core.GPUDevice{Vendor: "nvidia", Model: fields["Model"], BusID: fields["Bus Location"]}
		if d.BusID == "" {
			d.BusID = e.Name() // the directory is named by the bus id
		}
		g.Devices = append(g.Devices, d)
	}
	return nil
}

// colonFields reads "Key:   value" lines (tabs and spaces between).
func colonFields(b []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

var reDRMCard = core.LazyRegexp(`^card[0-9]+$`)

// readAMD reads the amdgpu module version and the AMD cards of /sys/class/drm.
func readAMD(root string, g *core.GPUInfo) error {
	if b, err := os.ReadFile(filepath.Join(root, "sys/module/amdgpu/version")); err == nil {
		g.AMDGPUVersion = clean(string(b))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	cards, err := os.ReadDir(filepath.Join(root, "sys/class/drm"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	for _, c := range cards {
		if !reDRMCard().MatchString(c.Name()) {
			continue // connectors (card0-DP-1), render nodes
		}
		dev := filepath.Join(root, "sys/class/drm", c.Name(), "device")
		vendor, err := os.ReadFile(filepath.Join(dev, "vendor"))
		if err != nil || clean(string(vendor)) != amdVendor {
			continue
		}
		uevent, _ := os.ReadFile(filepath.Join(dev, "uevent"))
		ue := map[string]string{}
		for _, l := range strings.Split(string(uevent), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				ue[k] = v
			}
		}
		d := core.GPUDevice{Vendor: "amd", BusID: ue["PCI_SLOT_NAME"]}
		if d.BusID == "" {
			if t, err := os.Readlink(dev); err == nil {
				d.BusID = filepath.Base(t)
			}
		}
		if b, err := os.ReadFile(filepath.Join(dev, "product_name")); err == nil && clean(string(b)) != "" {
			d.Model = clean(string(b))
		} else if b, err := os.ReadFile(filepath.Join(dev, "device")); err == nil {
			d.Model = "PCI 1002:" + strings.TrimPrefix(clean(string(b)), "0x")
		}
		g.Devices = append(g.Devices, d)
	}
	return nil
}
