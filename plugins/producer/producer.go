package producer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/runtime"
	"github.com/runprov/runprov/runfile"
)

// RunfileSource reads a Runfile as committed (plugins/consumer).
type RunfileSource interface {
	// Cat returns the Runfile at COMMIT[:PATH] and the commit row naming it.
	Cat(ctx context.Context, spec string) ([]byte, core.Commit, error)
}

// ImageStore is what a run needs of the image driver.
type ImageStore interface {
	core.Images
	core.ImageApproval
}

// CachedVerifier is an image store that verifies for a run without
// re-hashing the blobs unchanged since their last full re-hash
// (drivers/image.Store.VerifyCached; the trade-off is documented there).
type CachedVerifier interface {
	VerifyCached(ctx context.Context, digest string, p core.Progress) error
}

// RunWriter is the write half of the run store (drivers/sqlite).
type RunWriter interface {
	CreateRun(ctx context.Context, r *core.Run) error
	FinishRun(ctx context.Context, r *core.Run) error
	// LastRunSnapshot returns the newest other run of commit that recorded
	// a system snapshot, and that snapshot's sha256 ("" when none).
	LastRunSnapshot(ctx context.Context, commit, exceptID string) (id, kernelSHA string, err error)
	// SetRunSnapshot records the host snapshot and drift summary of the
	// stored run id; ErrNotFound when there is no such run.
	SetRunSnapshot(ctx context.Context, id, environmentSHA, kernelSHA, drift string) error
}

// Snapshot is this host as a run records it (plugins/env stores both rows).
type Snapshot struct {
	EnvironmentSHA256  string
	SystemKernelSHA256 string
}

// HostProbe collects and stores the host's environment and system kernel
// snapshots (plugins/env, through the wiring). Identical snapshots are
// stored once.
type HostProbe interface {
	Snapshot(ctx context.Context, runtimeName, runtimeVersion string) (Snapshot, error)
	// Drift summarises how the system kernel snapshot cur differs from prev;
	// "" when they are the same.
	Drift(ctx context.Context, prevSHA, curSHA string) (string, error)
}

// Producer is the Producer plugin of the seed: commit → verified image →
// sandboxed run → run record. Prepare, Execute and Finish are separate so
// that an executor on another node (Slurm) can Execute a prepared run from
// its files alone, without the database.
type Producer struct {
	Layout   core.Layout
	Runfiles RunfileSource
	Images   ImageStore
	Runs     RunWriter
	Host     HostProbe // nil: no snapshot is recorded
	Runtimes map[string]runtime.Runtime
	Devices  DeviceResolver // nil: runs may not have CDI devices
	// InputCache keeps the fingerprints of input files that hashed, so
	// that local runs read only the files changed since (nil: every run
	// reads its inputs in full).
	InputCache core.InputCache
	// RuntimeDir is where root runs mount their overlay roots (default
	// /run/runprov); see sandbox.go.
	RuntimeDir string
	Log        *slog.Logger

	// verified holds the manifest digests this process has re-hashed, so
	// that the N runs of one --array verify the image once. A pointer:
	// copies of the Producer share it.
	verified *digestSet
}

type digestSet struct {
	mu sync.Mutex
	m  map[string]bool
}

// verifiedSet returns p.verified, made on first use (before any copy).
func (p *Producer) verifiedSet() *digestSet {
	if p.verified == nil {
		p.verified = &digestSet{m: map[string]bool{}}
	}
	return p.verified
}

// Name identifies the plugin in the Terminal.
func (*Producer) Name() string { return "producer" }

// DefaultRuntimeDir is where a root runprov mounts run roots.
const DefaultRuntimeDir = "/run/runprov"

// Pull policies of Options.Pull.
const (
	// PullDefault is PullNever when the store requires approval (a TRE
	// store reaches no registry unless asked), PullMissing otherwise.
	PullDefault = ""
	PullMissing = "missing" // pull by digest when the image is not stored
	PullNever   = "never"
)

// Options are the run options of `runprov run`.
type Options struct {
	Commit             string            // COMMIT[:PATH], a unique prefix
	Inputs             map[string]string // --input NAME=PATH
	NoInput            bool              // --no-input: a TRE-layout run without its input
	OutputsDir         string            // --outputs DIR; "" = STORE/runs/RUN/outputs
	Args               map[string]string // --arg K=V
	Timeout            time.Duration     // --timeout; 0: the Runfile's
	Runtime            string            // "runc" (default) or "ch-run"
	AllowWeakerSandbox bool
	Command            []string // -- CMD ARGS
	Pull               string   // PullDefault, PullMissing or PullNever
	Progress           core.Progress
	// Executor names who executes the prepared run ("local"; "slurm").
	Executor string
	// Devices are CDI devices added to the Runfile's DEVICE lines (--device).
	Devices []string
	// Rehash reads every input file in full, whatever the input cache
	// holds (--rehash; always for reproduce).
	Rehash bool
}

// Prepared is a run ready to execute: its record (status running, already
// stored) and its directory STORE/runs/RUN with config.json, run.json and
// plan.json.
type Prepared struct {
	Run *core.Run
	Dir string
	// snapshot waits for the host snapshot Prepare started once the run
	// was stored (nil without a HostProbe).
	snapshot func() snapResult
}

// snapResult is a run's host snapshot and drift summary.
type snapResult struct {
	snap  Snapshot
	drift string
	err   error
}

// execPlan is plan.json: what Execute needs beyond run.json and config.json.
type execPlan struct {
	Runtime  string   `json:"runtime"`
	Rootless bool     `json:"rootless"`
	Rootfs   string   `json:"rootfs"`   // the shared unpacked image
	RunRoot  string   `json:"run_root"` // root runs: RUNTIME_DIR/RUN, the overlay
	Targets  []target `json:"targets,omitempty"`
	// The Runfile's USER on the host and in the container.
	HostUID      int           `json:"host_uid"`
	HostGID      int           `json:"host_gid"`
	ContainerUID uint32        `json:"container_uid"`
	ContainerGID uint32        `json:"container_gid"`
	IDMap        runtime.IDMap `json:"idmap"`
	// StepBundles are the config.json of each step but the last (the main
	// command is config.json itself), as paths relative to the run dir.
	StepBundles []string `json:"step_bundles,omitempty"`
	// SameOwner: the container's user writes files as the runprov user
	// (ch-run maps USER to it), so no ownership changes hands.
	SameOwner bool `json:"same_owner,omitempty"`
	// IDMapped are the inputs a root run binds through idmapped mounts
	// (inputs.go).
	IDMapped []idmappedInput `json:"idmapped,omitempty"`
}

// NewRunID returns 32 random lowercase hex digits.
func NewRunID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

func (p *Producer) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

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
	prog := core.OrNoProgress(opts.Progress)
	lap := p.lapper()
	rtName := opts.Runtime
	if rtName == "" {
		rtName = "runc"
	}
	rt, ok := p.Runtimes[rtName]
	if !ok {
		var names []string
		for n := range p.Runtimes {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("--runtime %s: %w: known runtimes: %s", rtName, core.ErrInvalid, strings.Join(names, ", "))
	}
	// The runtime's version takes longer than the checks: ask for it
	// meanwhile. host() waits for it (and is called on every return, so
	// nothing outlives Prepare).
	hostCh := make(chan hostResult, 1)
	go func() { hostCh <- p.hostSnapshot(ctx, rt) }()
	host := sync.OnceValue(func() hostResult { return <-hostCh })
	defer host()

	data, row, err := p.Runfiles.Cat(ctx, opts.Commit)
	lap("read the Runfile")
	if err != nil {
		return nil, err
	}
	parsed, err := runfile.Parse(row.Path, data)
	if err != nil {
		return nil, err
	}
	rf, err := parsed.Resolve(opts.Args)
	if err != nil {
		return nil, err
	}
	devices, err := p.devices(ctx, rf, opts, rtName)
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
		if outputs, err = filepath.Abs(opts.OutputsDir); err != nil {
			return nil, err
		}
		if err := checkEmptyDir(outputs); err != nil {
			return nil, err
		}
	}
	planned, err := Plan(PlanInput{Runfile: rf, Image: img.Config, Command: opts.Command, Inputs: inputs, NoInput: opts.NoInput,
		OutputsDir: outputs, ScratchDir: filepath.Join(dir, "scratch"), VolumesDir: p.Layout.Volume(""), Timeout: opts.Timeout, Devices: devices})
	if err != nil {
		return nil, err
	}

	rootless := os.Geteuid() != 0
	var idmap runtime.IDMap
	if rootless {
		idmap, err = runtime.RootlessIDMap(planned.UID, planned.GID, "", "")
	} else {
		idmap, err = runtime.RootIDMap(planned.UID, planned.GID)
	}
	if err != nil {
		return nil, err
	}

	limits := planned.Limits
	cgroups, note := cgroupsUsable(rootless, limits)
	if rtName != "runc" && hasCgroupLimits(limits) {
		cgroups, note = false, rtName+" cannot apply cgroup limits: cpus, memory and pids were not enforced (the timeout was)"
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
	planned.Limits = limits

	weaker, err := checkGuarantees(rt, planned, opts.AllowWeakerSandbox)
	if err != nil {
		return nil, err
	}

	rootfs, reused, err := p.Images.Unpack(ctx, img.ManifestDigest, prog)
	if err != nil {
		return nil, err
	}
	lap("unpack", "reused", reused)

	// The host snapshot may still be under way: build and write what
	// does not depend on it first (the spec and the plan).
	pl := &execPlan{Runtime: rtName, Rootless: rootless, Rootfs: rootfs, HostUID: idmap.HostUID, HostGID: idmap.HostGID,
		ContainerUID: planned.UID, ContainerGID: planned.GID, IDMap: idmap}
	if rtName == "ch-run" {
		pl.SameOwner, pl.HostUID, pl.HostGID = true, os.Getuid(), os.Getgid()
	}
	sb := Sandbox{Hostname: "runprov", IDMap: idmap, Annotations: map[string]string{"org.runprov.run": id}}
	if cgroups {
		sb.CgroupsPath = "/runprov/" + id
	}
	if rootless && rtName == "runc" {
		sb.Rootfs = filepath.Join(dir, "rootfs")
		sb.Overlay = &runtime.Overlay{Lower: rootfs, Upper: filepath.Join(dir, "overlay", "upper"), Work: filepath.Join(dir, "overlay", "work")}
		for _, q := range []string{rootfs, dir} {
			if err := checkOverlayPath(q); err != nil {
				return nil, err
			}
		}
	} else if rootless {
		sb.Rootfs = rootfs // ch-run as a user: the image must have the mount points
		for _, t := range mountTargets(planned.Mounts, planned.Cwd) {
			if _, err := os.Lstat(filepath.Join(rootfs, t.Path)); err != nil {
				return nil, fmt.Errorf("ch-run without root: %w: the image has no %s to mount on; run it with --runtime runc", core.ErrUnsupported, t.Path)
			}
		}
	} else {
		rd := p.RuntimeDir
		if rd == "" {
			rd = DefaultRuntimeDir
		}
		pl.RunRoot = filepath.Join(rd, id)
		pl.Targets = append(mountTargets(planned.Mounts, planned.Cwd), deviceTargets(devices)...)
		sb.Rootfs = filepath.Join(pl.RunRoot, "rootfs")
	}

	if sb.MountSources, err = planInputs(pl, planned.Mounts, pl.SameOwner); err != nil {
		return nil, err
	}
	lap("check the inputs can be read")
	spec, err := SpecFor(planned, sb)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(p.Layout.RunsDir(), 0o700); err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	done := false
	defer func() {
		if !done {
			removeAll(dir)
		}
	}()
	if err := writeJSON(filepath.Join(dir, "config.json"), spec); err != nil {
		return nil, err
	}
	for i, argv := range planned.Steps[:len(planned.Steps)-1] {
		sb.Args = argv
		s, err := SpecFor(planned, sb)
		if err != nil {
			return nil, err
		}
		rel := filepath.Join("steps", fmt.Sprint(i))
		if err := os.MkdirAll(filepath.Join(dir, rel), 0o700); err != nil {
			return nil, err
		}
		if err := writeJSON(filepath.Join(dir, rel, "config.json"), s); err != nil {
			return nil, err
		}
		pl.StepBundles = append(pl.StepBundles, rel)
	}
	if err := writeJSON(filepath.Join(dir, "plan.json"), pl); err != nil {
		return nil, err
	}
	lap("write the spec and the plan")
	hr := host()
	if hr.err != nil {
		return nil, hr.err
	}
	rtVersion := hr.version
	lap("runtime version")
	hostname, _ := os.Hostname()
	run := &core.Run{
		ID: id, Repo: row.Repo, Path: row.Path, Commit: row.Hash, RunfileBlob: row.Blob,
		ImageRef: img.Ref, ImageDigest: img.ManifestDigest, IndexDigest: img.IndexDigest, ConfigDigest: img.ConfigDigest,
		Approved: img.Approved, Approval: img.Signed, Args: argValues(rf), Env: planned.Env, Labels: labels(rf), Argv: planned.Argv,
		User: fmt.Sprintf("%d:%d", planned.UID, planned.GID), Workdir: planned.Cwd, Mounts: planned.Mounts, Limits: limits,
		Runtime: rtName, RuntimeVersion: rtVersion, WeakerSandbox: weaker, Executor: opts.Executor,
		Hostname: hostname, Status: core.RunRunning, Created: time.Now().UTC(),
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

	if err := writeJSON(filepath.Join(dir, "run.json"), run); err != nil {
		return nil, err
	}
	if err := p.Runs.CreateRun(ctx, run); err != nil {
		return nil, err
	}
	lap("write the run")
	done = true
	prep := &Prepared{Run: run, Dir: dir}
	if p.Host != nil {
		prep.snapshot = p.startSnapshot(ctx, run)
	}
	return prep, nil
}

type hostResult struct {
	version string
	err     error
}

// hostSnapshot returns the runtime's version.
func (p *Producer) hostSnapshot(ctx context.Context, rt runtime.Runtime) hostResult {
	v, err := rt.Version(ctx)
	if err != nil {
		return hostResult{err: fmt.Errorf("%w: %v", core.ErrUnsupported, err)}
	}
	return hostResult{version: v}
}

// startSnapshot snapshots the host for run, already stored running, while
// its container starts and runs: walking /proc/sys takes longer than the
// start itself. The row gets the snapshot as soon as it is stored, so a
// run whose runprov dies keeps it too; the returned function waits for it.
func (p *Producer) startSnapshot(ctx context.Context, run *core.Run) func() snapResult {
	ctx = context.WithoutCancel(ctx) // the record wants it even after Ctrl-C
	id, commit, rtName, rtVersion := run.ID, run.Commit, run.Runtime, run.RuntimeVersion
	ch := make(chan snapResult, 1)
	go func() {
		var r snapResult
		defer func() { ch <- r }()
		if r.snap, r.err = p.Host.Snapshot(ctx, rtName, rtVersion); r.err != nil {
			r.err = fmt.Errorf("snapshot the host: %w", r.err)
			return
		}
		_, prev, err := p.Runs.LastRunSnapshot(ctx, commit, id)
		if err != nil {
			r.err = fmt.Errorf("the last snapshot of commit %s: %w", commit, err)
			return
		}
		if prev != "" && prev != r.snap.SystemKernelSHA256 {
			if r.drift, err = p.Host.Drift(ctx, prev, r.snap.SystemKernelSHA256); err != nil {
				p.log().Warn("drift summary", "err", err)
			}
		}
		if err := p.Runs.SetRunSnapshot(ctx, id, r.snap.EnvironmentSHA256, r.snap.SystemKernelSHA256, r.drift); err != nil {
			r.err = fmt.Errorf("record the host snapshot: %w", err)
		}
	}()
	return sync.OnceValue(func() snapResult { return <-ch })
}

// image resolves, pulls when allowed, checks approval and verifies the
// image of the FROM line.
func (p *Producer) image(ctx context.Context, rf *runfile.File, opts Options, prog core.Progress) (*core.ResolvedImage, error) {
	img, err := p.Images.Resolve(ctx, rf.From.Digest, rf.From.Platform)
	var nf *core.ImageNotFoundError
	pull := opts.Pull
	if errors.As(err, &nf) && pull == PullDefault {
		required, rerr := p.Images.ApprovalRequired(ctx)
		if rerr != nil {
			return nil, fmt.Errorf("read the approval policy: %w", rerr)
		}
		pull = PullMissing
		if required {
			pull = PullNever
			nf.NotPulled = true
		}
	}
	if errors.As(err, &nf) && pull != PullNever {
		pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		_, perr := p.Images.Pull(pctx, rf.From.Ref, core.PullOptions{Platform: rf.From.Platform, Progress: prog})
		cancel()
		if perr != nil {
			return nil, fmt.Errorf("%w\n(pulling %s failed too: %v)", err, rf.From.Ref, perr)
		}
		img, err = p.Images.Resolve(ctx, rf.From.Digest, rf.From.Platform)
	}
	if err != nil {
		return nil, err
	}
	if err := p.Images.CheckApproval(ctx, img); err != nil {
		return nil, err
	}
	vs := p.verifiedSet()
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if !vs.m[img.ManifestDigest] {
		verify := p.Images.Verify
		if cv, ok := p.Images.(CachedVerifier); ok {
			verify = cv.VerifyCached
		}
		if err := verify(ctx, img.ManifestDigest, prog); err != nil {
			return nil, fmt.Errorf("image %s failed verification, refusing to run it: %w", img.ManifestDigest, err)
		}
		vs.m[img.ManifestDigest] = true
	}
	return img, nil
}

// checkEmptyDir accepts a directory that does not exist or is empty.
func checkEmptyDir(dir string) error {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--outputs %s: %w", dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && len(names) == 0 {
		fi, serr := f.Stat()
		if serr == nil && !fi.IsDir() {
			return fmt.Errorf("--outputs %s: %w: it is a file; give a new or empty directory", dir, core.ErrInvalid)
		}
		return nil // empty
	}
	return fmt.Errorf("--outputs %s: %w: the directory is not empty (it has %s); give a new or empty directory so the run's outputs are only what it wrote", dir, core.ErrExists, names[0])
}

func hasCgroupLimits(l core.RunLimits) bool { return l.CPUs > 0 || l.MemoryBytes > 0 || l.Pids > 0 }

// cgroupsUsable says whether LIMITs can be cgroup limits here, and a note
// for the record when they cannot.
func cgroupsUsable(rootless bool, l core.RunLimits) (bool, string) {
	if !hasCgroupLimits(l) {
		return false, ""
	}
	if rootless {
		return false, "runprov ran without root: cpus, memory and pids limits need a delegated cgroup and were not enforced (the timeout was)"
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return true, "" // cgroup v2
	}
	var missing []string
	for _, c := range []struct {
		ctl string
		set bool
	}{{"cpu", l.CPUs > 0}, {"memory", l.MemoryBytes > 0}, {"pids", l.Pids > 0}} {
		if c.set && writable("/sys/fs/cgroup/"+c.ctl) != nil {
			missing = append(missing, c.ctl)
		}
	}
	if len(missing) > 0 {
		return false, fmt.Sprintf("the host's cgroup v1 %s controller is not writable: cpus, memory and pids limits were not enforced (the timeout was)", strings.Join(missing, ", "))
	}
	return true, ""
}

func writable(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return unixAccessW(dir)
}

// checkGuarantees refuses a runtime that cannot give the sandbox the run
// needs, unless allowed; it returns whether the run is weaker.
func checkGuarantees(rt runtime.Runtime, p *Planned, allow bool) (bool, error) {
	g := rt.Guarantees()
	var lacks []string
	hasInput := false
	for _, m := range p.Mounts {
		hasInput = hasInput || m.Kind == core.MountInput
	}
	if hasInput && !g.ReadOnlyBinds {
		lacks = append(lacks, "read-only INPUT binds")
	}
	if !g.NetworkIsolated {
		lacks = append(lacks, "no network (NETWORK none)")
	}
	if !g.Seccomp {
		lacks = append(lacks, "the seccomp filter")
	}
	if !g.UserMapping {
		lacks = append(lacks, "an unprivileged user on the host (as root, ch-run's user is host root)")
	}
	if hasCgroupLimits(p.Limits) && !g.Cgroups {
		lacks = append(lacks, "cgroup LIMITs")
	}
	if len(lacks) == 0 {
		return false, nil
	}
	if !allow {
		return false, fmt.Errorf("runtime %s: %w: it cannot give %s; run with --runtime runc, or accept a weaker sandbox with --allow-weaker-sandbox (recorded with the run)",
			rt.Name(), core.ErrUnsafe, strings.Join(lacks, ", "))
	}
	return true, nil
}

func argValues(rf *runfile.File) map[string]string {
	m := map[string]string{}
	for _, a := range rf.Args {
		m[a.Name] = a.Value
	}
	return m
}

func labels(rf *runfile.File) map[string]string {
	m := map[string]string{}
	for _, kv := range rf.Labels {
		m[kv.Key] = kv.Value
	}
	return m
}

// lapper returns a function that logs, at debug level, the time since
// its previous call: where a run's start-up goes (runprov -v run).
func (p *Producer) lapper() func(what string, args ...any) {
	last := time.Now()
	return func(what string, args ...any) {
		now := time.Now()
		p.log().Debug("prepare: "+what, append([]any{"took", now.Sub(last).Round(10 * time.Microsecond)}, args...)...)
		last = now
	}
}

func writeJSON(p string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func readJSON(p string, v any) error {
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w: %v", p, core.ErrCorrupt, err)
	}
	return nil
}
