package producer

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/runtime"
	"github.com/runprov/runprov/runfile"
)

// DefaultPath is PATH when neither the image nor the Runfile sets it.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// PlanInput is what a run is made of, all known before anything runs.
type PlanInput struct {
	Runfile *runfile.File // resolved (runfile.File.Resolve)
	Image   core.ImageConfig
	Command []string // runprov run -- CMD ARGS: replaces CMD; nil: none given
	// Inputs maps INPUT names to absolute host paths (--input NAME=PATH).
	Inputs map[string]string
	// NoInput lets a TRE-layout run go without its input data (--no-input).
	NoInput bool
	// OutputsDir is the host directory of the outputs; with several OUTPUT
	// lines each gets OutputsDir/<its container path>.
	OutputsDir string
	// ScratchDir holds one directory per SCRATCH line (0, 1, ...); they are
	// removed after the run.
	ScratchDir string
	VolumesDir string        // STORE/volumes
	Timeout    time.Duration // --timeout; 0: the Runfile's LIMIT timeout
	// Devices are the resolved CDI devices (DEVICE, --device); nil: none.
	Devices *core.DeviceEdits
}

// Planned is the run as the Runfile, the image config and the options
// make it: what the container runs, with what, where.
type Planned struct {
	Argv     []string   // the main command: entrypoint + command
	Steps    [][]string // RUN lines, then Argv
	Env      []string
	Cwd      string
	UID, GID uint32
	Mounts   []core.RunMount
	Limits   core.RunLimits
	Layout   string // "runfile" or "tre" (the Runfile declares no INPUT, OUTPUT or SCRATCH)
	Devices  *core.DeviceEdits
}

// Plan computes a Planned run. It is pure: the same input gives the same
// plan; host paths are checked by the caller. Errors wrap core.ErrInvalid.
func Plan(in PlanInput) (*Planned, error) {
	rf := in.Runfile
	if rf == nil || len(rf.Deferred) > 0 {
		return nil, fmt.Errorf("plan run: %w: the Runfile is not resolved", core.ErrInvalid)
	}
	p := &Planned{UID: rf.User.UID, GID: rf.User.GID, Layout: "runfile", Devices: in.Devices}
	if rf.User.Default {
		p.UID, p.GID = runfile.DefaultUID, runfile.DefaultGID
	}

	entry, cmd := entrypointAndCmd(rf, in.Image)
	if in.Command != nil {
		cmd = in.Command
	}
	p.Argv = append(append([]string{}, entry...), cmd...)
	if len(p.Argv) == 0 {
		return nil, fmt.Errorf("%s: %w: nothing to run: neither the Runfile nor the image has ENTRYPOINT or CMD; add a CMD line or give the command after --", rf.Path, core.ErrInvalid)
	}
	for _, st := range rf.Steps {
		p.Steps = append(p.Steps, append([]string{}, st.Args...))
	}
	p.Steps = append(p.Steps, p.Argv)

	p.Cwd = "/"
	if in.Image.WorkingDir != "" && path.IsAbs(in.Image.WorkingDir) {
		p.Cwd = path.Clean(in.Image.WorkingDir)
	}
	if rf.Workdir != "" {
		p.Cwd = rf.Workdir
	}

	if err := planMounts(in, p); err != nil {
		return nil, err
	}
	p.Env = planEnv(in, p)
	p.Limits = core.RunLimits{CPUs: rf.Limits.CPUs, MemoryBytes: rf.Limits.MemoryBytes, Pids: rf.Limits.Pids, Timeout: rf.Limits.Timeout}
	if in.Timeout > 0 {
		p.Limits.Timeout = in.Timeout
	}
	return p, nil
}

// entrypointAndCmd applies ENTRYPOINT and CMD as in a Dockerfile: the
// Runfile's ENTRYPOINT replaces the image's and drops the image's CMD.
func entrypointAndCmd(rf *runfile.File, img core.ImageConfig) (entry, cmd []string) {
	entry, cmd = img.Entrypoint, img.Cmd
	if rf.Entrypoint != nil {
		entry, cmd = rf.Entrypoint.Args, nil
	}
	if rf.Cmd != nil {
		cmd = rf.Cmd.Args
	}
	return entry, cmd
}

func planMounts(in PlanInput, p *Planned) error {
	rf := in.Runfile
	inputs := rf.Inputs
	outputs := rf.Outputs
	scratch := rf.Scratch
	tre := len(rf.Inputs) == 0 && len(rf.Outputs) == 0 && len(rf.Scratch) == 0
	declared := map[string]bool{}
	for _, i := range inputs {
		declared[i.Name] = true
	}
	if tre {
		p.Layout = "tre"
		declared[runfile.TRELayout.InputName] = true
	}
	if err := checkInputsDeclared(in.Inputs, declared); err != nil {
		return err
	}
	if in.OutputsDir == "" || !filepath.IsAbs(in.OutputsDir) || !filepath.IsAbs(in.ScratchDir) || !filepath.IsAbs(in.VolumesDir) {
		return fmt.Errorf("plan run: %w: outputs, scratch and volumes need absolute host directories", core.ErrInvalid)
	}
	if tre {
		name := runfile.TRELayout.InputName
		src, ok := in.Inputs[name]
		if !ok && !in.NoInput {
			// A forgotten --input would otherwise run the analysis on an
			// empty /safe_data and record it as succeeded.
			return fmt.Errorf("%s: %w: no --input %s: the Runfile declares no INPUT, OUTPUT or SCRATCH, so it runs in the TRE layout, whose input %s is bound at %s; give it with --input %s=PATH, or say the run has no input with --no-input",
				rf.Path, core.ErrInvalid, name, name, strings.Join(runfile.TRELayout.InputTargets, " and "), name)
		}
		if ok {
			for _, t := range runfile.TRELayout.InputTargets {
				p.Mounts = append(p.Mounts, core.RunMount{Kind: core.MountInput, Name: name, Source: src, Target: t, ReadOnly: true})
			}
		}
		for _, t := range runfile.TRELayout.OutputTargets {
			p.Mounts = append(p.Mounts, core.RunMount{Kind: core.MountOutput, Source: in.OutputsDir, Target: t})
		}
		scratch = []runfile.Scratch{{Target: runfile.TRELayout.ScratchTarget}}
	}
	for _, i := range inputs {
		src, ok := in.Inputs[i.Name]
		if !ok {
			return fmt.Errorf("%s:%d: INPUT %s: %w: no --input %s was given; give its host path with --input %s=PATH", rf.Path, i.Line, i.Name, core.ErrInvalid, i.Name, i.Name)
		}
		p.Mounts = append(p.Mounts, core.RunMount{Kind: core.MountInput, Name: i.Name, Source: src, Target: i.Target, ReadOnly: true})
	}
	addDeclaredMounts(in, p, outputs, scratch)
	return nil
}

// checkInputsDeclared refuses an --input the Runfile does not declare.
func checkInputsDeclared(given map[string]string, declared map[string]bool) error {
	var names []string
	for n := range given {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !declared[n] {
			var known []string
			for k := range declared {
				known = append(known, k)
			}
			sort.Strings(known)
			return fmt.Errorf("--input %s: %w: the Runfile has no INPUT %s (it has: %s)", n, core.ErrInvalid, n, strings.Join(known, ", "))
		}
	}
	return nil
}

// addDeclaredMounts adds the OUTPUT, SCRATCH and VOLUME mounts, and /tmp
// unless a mount covers it.
func addDeclaredMounts(in PlanInput, p *Planned, outputs []runfile.Output, scratch []runfile.Scratch) {
	for _, o := range outputs {
		src := in.OutputsDir
		if len(outputs) > 1 {
			src = filepath.Join(in.OutputsDir, filepath.FromSlash(strings.TrimPrefix(o.Target, "/")))
		}
		p.Mounts = append(p.Mounts, core.RunMount{Kind: core.MountOutput, Source: src, Target: o.Target, Sensitivity: o.Sensitivity})
	}
	tmpTaken := false
	for i, s := range scratch {
		p.Mounts = append(p.Mounts, core.RunMount{Kind: core.MountScratch, Source: filepath.Join(in.ScratchDir, strconv.Itoa(i)), Target: s.Target, Size: s.SizeBytes})
		tmpTaken = tmpTaken || s.Target == "/tmp"
	}
	for _, v := range in.Runfile.Volumes {
		p.Mounts = append(p.Mounts, core.RunMount{Kind: core.MountVolume, Name: v.Name, Source: filepath.Join(in.VolumesDir, v.Name), Target: v.Target})
	}
	for _, m := range p.Mounts {
		tmpTaken = tmpTaken || m.Target == "/tmp" || strings.HasPrefix(m.Target, "/tmp/")
	}
	if !tmpTaken {
		p.Mounts = append(p.Mounts, core.RunMount{Kind: core.MountTmp, Target: "/tmp"})
	}
}

// planEnv is the image's environment, then the Runfile's ENV (a later key
// replaces an earlier one in place), then PATH, TMPDIR (the first scratch)
// and HOME when missing.
func planEnv(in PlanInput, p *Planned) []string {
	var keys []string
	vals := map[string]string{}
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	for _, kv := range in.Image.Env {
		k, v, _ := strings.Cut(kv, "=")
		if k != "" {
			set(k, v)
		}
	}
	for _, kv := range in.Runfile.Env {
		set(kv.Key, kv.Value)
	}
	// Device variables win, as CDI applies them over the container's.
	if in.Devices != nil {
		for _, kv := range in.Devices.Env {
			if k, v, _ := strings.Cut(kv, "="); k != "" {
				set(k, v)
			}
		}
	}
	if _, ok := vals["PATH"]; !ok {
		set("PATH", DefaultPath)
	}
	tmp := "/tmp"
	for _, m := range p.Mounts {
		if m.Kind == core.MountScratch {
			tmp = m.Target
			set("TMPDIR", tmp)
			break
		}
	}
	if _, ok := vals["HOME"]; !ok {
		set("HOME", tmp)
	}
	env := make([]string, 0, len(keys))
	for _, k := range keys {
		env = append(env, k+"="+vals[k])
	}
	return env
}

// Sandbox is where and how a planned run is contained on this host.
type Sandbox struct {
	Rootfs      string            // root.path
	Overlay     *runtime.Overlay  // rootless: the overlay runc assembles
	Hostname    string            // the container's
	IDMap       runtime.IDMap     // user namespace
	CgroupsPath string            // "" when limits cannot be applied
	Args        []string          // replaces p.Argv (a step); nil: p.Argv
	Annotations map[string]string // e.g. the run id
	// MountSources replaces the host path of a mount the runtime must
	// bind from elsewhere (an input's idmapped mount); the record keeps
	// the original.
	MountSources map[string]string
}

// SpecFor is the OCI runtime spec of a planned run in a sandbox; pure.
func SpecFor(p *Planned, sb Sandbox) (*specs.Spec, error) {
	args := p.Argv
	if sb.Args != nil {
		args = sb.Args
	}
	mounts := p.Mounts
	if len(sb.MountSources) > 0 {
		mounts = slices.Clone(p.Mounts)
		for i, m := range mounts {
			if src, ok := sb.MountSources[m.Source]; ok && m.Kind == core.MountInput {
				mounts[i].Source = src
			}
		}
	}
	s, err := runtime.Spec(runtime.SpecOptions{
		Rootfs: sb.Rootfs, Overlay: sb.Overlay, Hostname: sb.Hostname,
		Args: args, Env: p.Env, Cwd: p.Cwd, UID: p.UID, GID: p.GID,
		Mounts: mounts, UIDMappings: sb.IDMap.UIDs, GIDMappings: sb.IDMap.GIDs,
		Limits: p.Limits, CgroupsPath: sb.CgroupsPath, Devices: p.Devices,
	})
	if err != nil {
		return nil, err
	}
	s.Annotations = sb.Annotations
	return s, nil
}
