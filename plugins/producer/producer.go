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

// ImageStore is what a run needs of the image driver (drivers/image.Store,
// with the site policy's approval rules in cmd/runprov).
type ImageStore interface {
	// Resolve finds a digest and picks the manifest for platform; Pull
	// fetches a pinned reference; Unpack makes (once) the rootfs of a
	// manifest (drivers/image says how each fails).
	Resolve(ctx context.Context, digest, platform string) (*core.ResolvedImage, error)
	Pull(ctx context.Context, ref string, opts core.PullOptions) ([]core.ImageRecord, error)
	Unpack(ctx context.Context, manifestDigest string, p core.Progress) (dir string, reused bool, err error)
	// VerifyCached verifies the image for a run without re-hashing the
	// blobs unchanged since their last full re-hash (the trade-off is
	// documented at drivers/image.Store.VerifyCached).
	VerifyCached(ctx context.Context, digest string, p core.Progress) error
	// CheckApproval refuses an image the policy does not let run (a
	// *core.NotApprovedError or *core.ApprovalError); ApprovalRequired
	// says whether the store requires approval.
	CheckApproval(ctx context.Context, img *core.ResolvedImage) error
	ApprovalRequired(ctx context.Context) (bool, error)
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

// Inventorier records what is inside an image (plugins/sbom): once per
// image config, cheap when already known, never failing a run.
type Inventorier interface {
	TakeUnpacked(ctx context.Context, img *core.ResolvedImage, rootfs string)
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
	// Inventory takes the package inventory of an image on its first run
	// (nil: none is taken).
	Inventory Inventorier
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
	// arrayMemo is the Runfile source of array tasks (PrepareQueued).
	arrayMemo *memoRunfiles
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
	// Note is what the user says of the run (--note), stored beside it.
	Note string
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
	// stored waits until the run's row is stored, and says whether it was.
	stored func() error
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
	// Overlay: a rootless run on an overlay of the image that the runtime
	// mounts (STORE/runs/RUN/{rootfs,overlay}).
	Overlay bool `json:"overlay,omitempty"`
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

type versionResult struct {
	version string
	err     error
}

// runtimeVersion asks the runtime for its version.
func (p *Producer) runtimeVersion(ctx context.Context, rt runtime.Runtime) versionResult {
	v, err := rt.Version(ctx)
	if err != nil {
		return versionResult{err: fmt.Errorf("%w: %v", core.ErrUnsupported, err)}
	}
	return versionResult{version: v}
}

// startSnapshot snapshots the host for run, already stored running, while
// its container starts and runs: walking /proc/sys takes longer than the
// start itself. The row gets the snapshot as soon as it is stored, so a
// run whose runprov dies keeps it too; the returned function waits for it.
func (p *Producer) startSnapshot(ctx context.Context, run *core.Run) func() snapResult {
	ctx = context.WithoutCancel(ctx) // the record wants it even after Ctrl-C
	id, commit, rtName, rtVersion := run.ID, run.Commit, run.Runtime, run.RuntimeVersion
	return inBackground(func() (r snapResult) {
		if r.snap, r.err = p.Host.Snapshot(ctx, rtName, rtVersion); r.err != nil {
			r.err = fmt.Errorf("snapshot the host: %w", r.err)
			return r
		}
		_, prev, err := p.Runs.LastRunSnapshot(ctx, commit, id)
		if err != nil {
			r.err = fmt.Errorf("the last snapshot of commit %s: %w", commit, err)
			return r
		}
		if prev != "" && prev != r.snap.SystemKernelSHA256 {
			if r.drift, err = p.Host.Drift(ctx, prev, r.snap.SystemKernelSHA256); err != nil {
				p.log().Warn("drift summary", "err", err)
			}
		}
		if err := p.Runs.SetRunSnapshot(ctx, id, r.snap.EnvironmentSHA256, r.snap.SystemKernelSHA256, r.drift); err != nil {
			r.err = fmt.Errorf("record the host snapshot: %w", err)
		}
		return r
	})
}

// inBackground runs f in a goroutine; the returned function waits for its
// result, and returns it again on later calls.
func inBackground[T any](f func() T) func() T {
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	return sync.OnceValue(func() T { return <-ch })
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
		if err := p.Images.VerifyCached(ctx, img.ManifestDigest, prog); err != nil {
			return nil, &ImageVerifyError{Digest: img.ManifestDigest, Err: err}
		}
		vs.m[img.ManifestDigest] = true
	}
	return img, nil
}

// ImageVerifyError: the stored image no longer matches its digest, so the
// run is refused. It wraps what verification found (core.ErrCorrupt).
type ImageVerifyError struct {
	Digest string
	Err    error
}

func (e *ImageVerifyError) Error() string {
	return fmt.Sprintf("image %s failed verification, refusing to run it: %v", e.Digest, e.Err)
}
func (e *ImageVerifyError) Unwrap() error { return e.Err }

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

// ReadPreparedRun reads the record of the run prepared in dir (run.json).
func ReadPreparedRun(dir string) (*core.Run, error) {
	var r core.Run
	if err := readJSON(filepath.Join(dir, "run.json"), &r); err != nil {
		return nil, err
	}
	return &r, nil
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
