package producer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/runtime"
	"github.com/runprov/runprov/runfile"
)

// Prepare checks everything a run needs and refuses before anything runs:
// the Runfile at the commit and its ARGs, the image (present — pulled by
// digest when missing and allowed —, verified blob by blob, approved),
// the inputs (they exist), the outputs directory (new or empty), the
// runtime (it gives the sandbox the Runfile needs, unless the user allowed
// a weaker one). Then it unpacks the rootfs (once per image), writes
// STORE/runs/RUN/{config.json,run.json,plan.json} and stores the run as
// running. The host snapshot is taken after that, while the run starts
// (startSnapshot). Errors wrap core sentinels (ErrInvalid,
// ErrNotFound, ErrCorrupt, ErrNotApproved, ErrUnsafe, ErrUnsupported).
func (p *Producer) Prepare(ctx context.Context, opts Options) (*Prepared, error) {
	prep, err := p.prepare(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := prep.stored(); err != nil {
		removeAll(prep.Dir)
		return nil, err
	}
	return prep, nil
}

// prepare is Prepare, except that the run's row is being stored when it
// returns: Prepared.stored waits for it. Run sets up the sandbox meanwhile
// and starts the container only once the run is stored.
func (p *Producer) prepare(ctx context.Context, opts Options) (*Prepared, error) {
	prog := core.OrNoProgress(opts.Progress)
	lap := p.lapper()
	rt, err := p.runtime(opts.Runtime)
	if err != nil {
		return nil, err
	}
	// The runtime's version takes longer than the checks: ask for it
	// meanwhile. version() waits for it (and is called on every return, so
	// nothing outlives Prepare).
	version := p.askVersion(ctx, rt)
	defer version()

	rf, row, err := p.runfile(ctx, opts)
	lap("read the Runfile")
	if err != nil {
		return nil, err
	}
	devices, err := p.devices(ctx, rf, opts, rt)
	if err != nil {
		return nil, err
	}
	img, err := p.image(ctx, rf, opts, prog)
	if err != nil {
		return nil, err
	}
	lap("resolve, check and verify the image")

	id := NewRunID()
	dir := p.Layout.Run(id)
	planned, err := p.plan(rf, img, opts, dir, devices)
	if err != nil {
		return nil, err
	}
	rootless := os.Geteuid() != 0
	idmap, err := idMapFor(rootless, planned)
	if err != nil {
		return nil, err
	}
	planned.Limits = runLimits(rt, rootless, planned)
	weaker, err := checkGuarantees(rt, planned, opts.AllowWeakerSandbox)
	if err != nil {
		return nil, err
	}
	rootfs, reused, err := p.Images.Unpack(ctx, img.ManifestDigest, prog)
	if err != nil {
		return nil, err
	}
	lap("unpack", "reused", reused)
	if p.Inventory != nil {
		p.Inventory.TakeUnpacked(ctx, img, rootfs)
		lap("inventory")
	}

	pl, sb, err := p.sandbox(id, rt, rootless, rootfs, idmap, planned, devices)
	if err != nil {
		return nil, err
	}
	lap("check the inputs can be read")
	done := false
	defer func() {
		if !done {
			removeAll(dir)
		}
	}()
	if err := p.writeBundle(dir, planned, sb, pl); err != nil {
		return nil, err
	}
	lap("write the spec and the plan")
	run := newRunRecord(id, row, rf, img, planned, rt.Name(), weaker, opts, devices)
	if err := p.addVersion(run, version); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(dir, "run.json"), run); err != nil {
		return nil, err
	}
	lap("runtime version, run.json")
	done = true
	return p.store(ctx, dir, run), nil
}

// askVersion asks the runtime for its version in the background; the
// returned function waits for the answer.
func (p *Producer) askVersion(ctx context.Context, rt runtime.Runtime) func() versionResult {
	return inBackground(func() versionResult { return p.runtimeVersion(ctx, rt) })
}

// store stores the run in the background, then starts the host snapshot,
// which the run's row gets while the container starts.
func (p *Producer) store(ctx context.Context, dir string, run *core.Run) *Prepared {
	var snapshot func() snapResult
	prep := &Prepared{Run: run, Dir: dir, stored: inBackground(func() error {
		err := p.Runs.CreateRun(ctx, run)
		if err == nil && p.Host != nil {
			snapshot = p.startSnapshot(ctx, run)
		}
		return err
	})}
	if p.Host != nil {
		prep.snapshot = func() snapResult {
			if prep.stored() != nil {
				return snapResult{}
			}
			return snapshot()
		}
	}
	return prep
}

// runtime is the runtime name names ("" is runc).
func (p *Producer) runtime(name string) (runtime.Runtime, error) {
	if name == "" {
		name = "runc"
	}
	if rt, ok := p.Runtimes[name]; ok {
		return rt, nil
	}
	var names []string
	for n := range p.Runtimes {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("--runtime %s: %w: known runtimes: %s", name, core.ErrInvalid, strings.Join(names, ", "))
}

// runfile reads the Runfile at opts.Commit and resolves its ARGs.
func (p *Producer) runfile(ctx context.Context, opts Options) (*runfile.File, core.Commit, error) {
	data, row, err := p.Runfiles.Cat(ctx, opts.Commit)
	if err != nil {
		return nil, row, err
	}
	parsed, err := runfile.Parse(row.Path, data)
	if err != nil {
		return nil, row, err
	}
	rf, err := parsed.Resolve(opts.Args)
	return rf, row, err
}

// plan checks the inputs exist and the outputs directory is new or empty,
// and plans the run in dir.
func (p *Producer) plan(rf *runfile.File, img *core.ResolvedImage, opts Options, dir string, devices *core.DeviceEdits) (*Planned, error) {
	inputs := map[string]string{}
	for name, hp := range opts.Inputs {
		abs, err := filepath.Abs(hp)
		if err != nil {
			return nil, err
		}
		// Whether the run's user can read it is planInputs' to check.
		if _, err := os.Stat(abs); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("--input %s=%s: %w: no such file or directory; give the path of the data to bind at INPUT %s", name, hp, core.ErrNotFound, name)
			}
			return nil, fmt.Errorf("--input %s=%s: %w", name, hp, err)
		}
		inputs[name] = abs
	}
	outputs := filepath.Join(dir, "outputs")
	if opts.OutputsDir != "" {
		var err error
		if outputs, err = filepath.Abs(opts.OutputsDir); err != nil {
			return nil, err
		}
		if err := checkEmptyDir(outputs); err != nil {
			return nil, err
		}
	}
	return Plan(PlanInput{Runfile: rf, Image: img.Config, Command: opts.Command, Inputs: inputs, NoInput: opts.NoInput,
		OutputsDir: outputs, ScratchDir: filepath.Join(dir, "scratch"), VolumesDir: p.Layout.Volume(""), Timeout: opts.Timeout, Devices: devices})
}

// idMapFor maps the Runfile's USER to a host user: the caller's subordinate
// ids without root, a fixed range with it.
func idMapFor(rootless bool, planned *Planned) (runtime.IDMap, error) {
	if rootless {
		return runtime.RootlessIDMap(planned.UID, planned.GID, "", "")
	}
	return runtime.RootIDMap(planned.UID, planned.GID)
}

// runLimits are the planned limits with the note of what was not enforced.
func runLimits(rt runtime.Runtime, rootless bool, planned *Planned) core.RunLimits {
	limits := planned.Limits
	_, note := cgroupsUsable(rootless, limits)
	if !rt.Guarantees().Cgroups && hasCgroupLimits(limits) {
		note = rt.Name() + " cannot apply cgroup limits: cpus, memory and pids were not enforced (the timeout was)"
	}
	for _, m := range planned.Mounts {
		if m.Kind == core.MountScratch && m.Size > 0 {
			// Scratch is a directory on the store's disk, shared by the
			// steps; a tmpfs would enforce the size but live in memory.
			note = strings.TrimPrefix(note+"; SCRATCH sizes are not enforced (scratch is a per-run directory on the store's disk)", "; ")
			break
		}
	}
	limits.Note = note
	return limits
}

// sandbox lays the run out: the plan Execute follows and the sandbox its
// spec describes, rootless (an overlay the runtime mounts, or the image
// itself for a runtime that runs as the caller) or as root (an overlay
// under RuntimeDir that Execute mounts).
func (p *Producer) sandbox(id string, rt runtime.Runtime, rootless bool, rootfs string, idmap runtime.IDMap, planned *Planned, devices *core.DeviceEdits) (*execPlan, Sandbox, error) {
	dir := p.Layout.Run(id)
	guar := rt.Guarantees()
	pl := &execPlan{Runtime: rt.Name(), Rootless: rootless, Rootfs: rootfs, HostUID: idmap.HostUID, HostGID: idmap.HostGID,
		ContainerUID: planned.UID, ContainerGID: planned.GID, IDMap: idmap}
	if guar.RunsAsCaller {
		pl.SameOwner, pl.HostUID, pl.HostGID = true, os.Getuid(), os.Getgid()
	}
	sb := Sandbox{Hostname: "runprov", IDMap: idmap, Annotations: map[string]string{"org.runprov.run": id}}
	if cgroups, _ := cgroupsUsable(rootless, planned.Limits); cgroups && guar.Cgroups {
		sb.CgroupsPath = "/runprov/" + id
	}
	switch {
	case rootless && guar.RootlessOverlay:
		pl.Overlay = true
		sb.Rootfs = filepath.Join(dir, "rootfs")
		sb.Overlay = &runtime.Overlay{Lower: rootfs, Upper: filepath.Join(dir, "overlay", "upper"), Work: filepath.Join(dir, "overlay", "work")}
		for _, q := range []string{rootfs, dir} {
			if err := checkOverlayPath(q); err != nil {
				return nil, sb, err
			}
		}
	case rootless:
		sb.Rootfs = rootfs // e.g. ch-run as a user: the image must have the mount points
		for _, t := range mountTargets(planned.Mounts, planned.Cwd) {
			if _, err := os.Lstat(filepath.Join(rootfs, t.Path)); err != nil {
				return nil, sb, fmt.Errorf("%s without root: %w: the image has no %s to mount on; run it with --runtime runc", rt.Name(), core.ErrUnsupported, t.Path)
			}
		}
	default:
		rd := p.RuntimeDir
		if rd == "" {
			rd = DefaultRuntimeDir
		}
		pl.RunRoot = filepath.Join(rd, id)
		pl.Targets = append(mountTargets(planned.Mounts, planned.Cwd), deviceTargets(devices)...)
		sb.Rootfs = filepath.Join(pl.RunRoot, "rootfs")
	}
	var err error
	sb.MountSources, err = planInputs(pl, planned.Mounts, pl.SameOwner)
	return pl, sb, err
}

// writeBundle makes the run directory dir with the spec (config.json), a
// spec per step but the last, and the plan.
func (p *Producer) writeBundle(dir string, planned *Planned, sb Sandbox, pl *execPlan) error {
	spec, err := SpecFor(planned, sb)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p.Layout.RunsDir(), 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	if err := writeJSON(filepath.Join(dir, "config.json"), spec); err != nil {
		return err
	}
	for i, argv := range planned.Steps[:len(planned.Steps)-1] {
		sb.Args = argv
		s, err := SpecFor(planned, sb)
		if err != nil {
			return err
		}
		rel := filepath.Join("steps", fmt.Sprint(i))
		if err := os.MkdirAll(filepath.Join(dir, rel), 0o700); err != nil {
			return err
		}
		if err := writeJSON(filepath.Join(dir, rel, "config.json"), s); err != nil {
			return err
		}
		pl.StepBundles = append(pl.StepBundles, rel)
	}
	return writeJSON(filepath.Join(dir, "plan.json"), pl)
}

// newRunRecord is the record of a run about to start.
func newRunRecord(id string, row core.Commit, rf *runfile.File, img *core.ResolvedImage, planned *Planned, rtName string, weaker bool, opts Options, devices *core.DeviceEdits) *core.Run {
	hostname, _ := os.Hostname()
	run := &core.Run{
		ID: id, Repo: row.Repo, Path: row.Path, Commit: row.Hash, RunfileBlob: row.Blob,
		ImageRef: img.Ref, ImageDigest: img.ManifestDigest, IndexDigest: img.IndexDigest, ConfigDigest: img.ConfigDigest,
		Approved: img.Approved, Approval: img.Signed, Args: argValues(rf), Env: planned.Env, Labels: labels(rf), Argv: planned.Argv,
		User: fmt.Sprintf("%d:%d", planned.UID, planned.GID), Workdir: planned.Cwd, Mounts: planned.Mounts, Limits: planned.Limits,
		Runtime: rtName, WeakerSandbox: weaker, Executor: opts.Executor,
		Hostname: hostname, Status: core.RunRunning, Created: time.Now().UTC(), Note: opts.Note,
	}
	if run.Executor == "" {
		run.Executor = "local"
	}
	if devices != nil {
		run.Devices, run.CDISpecs = devices.Names, devices.Specs
	}
	if img.Ref == "" {
		run.ImageRef = rf.From.Ref
	}
	for i, argv := range planned.Steps {
		run.Steps = append(run.Steps, core.RunStep{Index: i, Argv: argv, ExitCode: -1})
	}
	return run
}

// addVersion waits for the runtime's version and puts it in run.
func (p *Producer) addVersion(run *core.Run, version func() versionResult) error {
	hr := version()
	if hr.err != nil {
		return hr.err
	}
	run.RuntimeVersion = hr.version
	return nil
}
