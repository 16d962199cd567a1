package runfile

import (
	"strconv"
	"strings"

	"github.com/runprov/runprov/core"
)

// Format versions. A file declares one with "# runprov-format=N" among the
// directives at its top; a file without the directive is format 1.
// Format 2 adds DEVICE.
const (
	FormatDevices = 2 // the first version with DEVICE
)

// formatDirective is "# runprov-format=N". buildkit's directive parser only
// knows syntax, escape and check, so runprov reads its own.
var reFormatDirective = core.LazyRegexp(`^#\s*(?i:runprov-format)\s*=\s*(.*?)\s*$`)

// formatDirective reports whether line is the format directive and, when it
// is, its value.
func formatDirective(line []byte) (string, bool) {
	m := reFormatDirective().FindSubmatch(line)
	if m == nil {
		return "", false
	}
	return string(m[1]), true
}

// formatVersion checks a directive's value.
func formatVersion(v string) (int, string) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > Version {
		return 0, "the runprov-format directive must be a format version from 1 to " + strconv.Itoa(Version) + ", not " + show(v) + "; this runprov reads formats up to " + strconv.Itoa(Version)
	}
	return n, ""
}

// Device is a DEVICE line: a CDI device by its fully qualified name.
type Device struct {
	Name string // VENDOR/CLASS=NAME, e.g. nvidia.com/gpu=all
	Line int
}

// The CDI qualified device name grammar (tags.cncf.io/container-device-interface
// pkg/parser), kept here so the Runfile package needs no CDI library.
var reDeviceName = core.LazyRegexp(`^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?/[a-zA-Z]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?=[a-zA-Z0-9]([a-zA-Z0-9_.:-]*[a-zA-Z0-9])?$`)

// CheckDeviceName returns why s is not a CDI fully qualified device name,
// or "" when it is one.
func CheckDeviceName(s string) string {
	if len(s) > 255 || !reDeviceName().MatchString(s) {
		return "a device is named VENDOR/CLASS=NAME as CDI specs declare it, like nvidia.com/gpu=all or nvidia.com/gpu=0, not " + show(s)
	}
	return ""
}

// device reads a DEVICE line. Names are not expanded: they are what the
// run needs from the host, not a parameter.
func (b *builder) device() {
	if b.version < FormatDevices {
		b.errorf("DEVICE needs Runfile format %d; declare it with \"# runprov-format=%d\" on the first line", FormatDevices, FormatDevices)
		return
	}
	words := splitWords(b.ins.rest, b.escape)
	if len(words) == 0 {
		b.errorf("DEVICE needs a CDI device name, like DEVICE nvidia.com/gpu=all")
		return
	}
	for _, w := range words {
		if msg := CheckDeviceName(w); msg != "" {
			b.errorf("DEVICE: %s", msg)
			continue
		}
		if l, dup := b.devices[w]; dup {
			b.errorf("DEVICE %s is already declared on line %d; give each device once", w, l)
			continue
		}
		b.devices[w] = b.ins.line
		b.f.Devices = append(b.f.Devices, Device{Name: w, Line: b.ins.line})
	}
}

// DeviceNames returns the names of the DEVICE lines and then extra ones
// (run --device), each once, in that order.
func (f *File) DeviceNames(extra ...string) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range f.Devices {
		if !seen[d.Name] {
			seen[d.Name] = true
			out = append(out, d.Name)
		}
	}
	for _, n := range extra {
		if n = strings.TrimSpace(n); !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
