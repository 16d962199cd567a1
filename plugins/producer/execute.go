package producer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/runtime"
)

// errTimeout is the cause of a run's context when its timeout fires.
var errTimeout = errors.New("timeout")

// ExitKilled is the status recorded for a run killed at its timeout: what
// a shell shows for a process killed with SIGKILL.
const ExitKilled = 128 + int(syscall.SIGKILL)

// Execute runs a prepared run from its directory alone (config.json,
// run.json, plan.json): no database. It makes the sandbox's root and
// directories, runs each step (the RUN lines, then the main command) as
// its own container until one fails, streams stdout and stderr to stdio
// and to stdout.log and stderr.log in dir, kills the container at the
// timeout or when ctx ends (Ctrl-C), removes the scratch directories and
// the overlay, hashes inputs and outputs, and returns the finished run
// (also written to run.json). The run is returned even with an error (the
// runtime failed): it is then failed or aborted with the reason. Every
// input file is read in full: the input cache is in the database.
func Execute(ctx context.Context, dir string, rt runtime.Runtime, stdio runtime.Stdio) (*core.Run, error) {
	run, teardown, err := executeRun(ctx, dir, rt, stdio, execOptions{})
	return run, errors.Join(err, teardown())
}

// execOptions are what a run of this process (Producer.Run) adds to
// Execute: the input cache, and stored, which waits until the run is
// stored: the container starts only after that.
type execOptions struct {
	inputs inputCacheUse
	stored func() error
}

// inputCacheUse is how a run uses the input cache: none when cache is nil;
// with rehash, every file is read and the cache only refreshed.
type inputCacheUse struct {
	cache  core.InputCache
	rehash bool
}

// executeRun is Execute, except that the run's root may still be being torn
// down when it returns: teardown waits for that and returns its error.
func executeRun(ctx context.Context, dir string, rt runtime.Runtime, stdio runtime.Stdio, eo execOptions) (_ *core.Run, teardown func() error, _ error) {
	var run core.Run
	var pl execPlan
	teardown = func() error { return nil }
	if err := readJSON(filepath.Join(dir, "run.json"), &run); err != nil {
		return nil, teardown, fmt.Errorf("read the prepared run: %w", err)
	}
	if err := readJSON(filepath.Join(dir, "plan.json"), &pl); err != nil {
		return nil, teardown, fmt.Errorf("read the prepared run: %w", err)
	}
	if rt.Name() != pl.Runtime {
		return nil, teardown, fmt.Errorf("run %s was prepared for %s, not %s: %w", run.ID, pl.Runtime, rt.Name(), core.ErrInvalid)
	}
	teardown, err := execute(ctx, dir, rt, stdio, &run, &pl, eo)
	if err != nil && run.Status == core.RunRunning {
		run.Status, run.Reason = core.RunFailed, err.Error()
	}
	if run.Ended.IsZero() {
		run.Ended = time.Now().UTC()
	}
	if werr := writeJSON(filepath.Join(dir, "run.json"), &run); werr != nil && err == nil {
		err = werr
	}
	return &run, teardown, err
}

// execute runs the prepared run; the run's root is torn down in the
// background (an unmount and a removal, which the record does not wait
// for), and teardown waits for it.
func execute(ctx context.Context, dir string, rt runtime.Runtime, stdio runtime.Stdio, run *core.Run, pl *execPlan, eo execOptions) (teardown func() error, err error) {
	bg := context.WithoutCancel(ctx)
	own := owners{rootless: pl.Rootless, idmap: pl.IDMap, same: pl.SameOwner}

	d := runDirsOf(run)
	outputs, scratch, give, inputs, outName := d.outputs, d.scratch, d.give, d.inputs, d.outName
	teardown = func() error { return nil }
	if err := makeRunDirs(outputs, give); err != nil {
		return teardown, err
	}

	// cleanup runs once: at the end, or on the way out of an error (the
	// deferred call sets the named result teardown).
	cleaned := false
	cleanup := func() error {
		if cleaned {
			return nil
		}
		cleaned = true
		teardown = inBackground(func() error { return tearDownRoot(dir, pl) })
		return releaseDirs(dir, own, scratch, outputs)
	}
	defer cleanup()
	if err := own.give(give, pl.HostUID, pl.HostGID, pl.ContainerUID, pl.ContainerGID); err != nil {
		return teardown, err
	}

	if err := setUpRoot(dir, pl); err != nil {
		return teardown, err
	}
	cio, closeLogs, err := openLogs(dir, stdio)
	if err != nil {
		return teardown, err
	}
	defer closeLogs()
	if eo.stored != nil {
		if err := eo.stored(); err != nil {
			return teardown, err
		}
	}

	// Inputs are read-only in the container: hash them while it runs.
	var inWG sync.WaitGroup
	var inRecs []core.FileRecord
	var inErr error
	inWG.Add(1)
	go func() {
		defer inWG.Done()
		inRecs, inErr = hashInputs(bg, inputs, eo.inputs)
	}()

	rctx := ctx
	if t := run.Limits.Timeout; t > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeoutCause(ctx, t, errTimeout)
		defer cancel()
	}
	run.Started = time.Now().UTC()
	runErr := runSteps(rctx, dir, rt, cio, run, pl)
	run.Ended = time.Now().UTC()
	inWG.Wait()
	run.Inputs = inRecs
	run.InputsCached, run.InputsHashedAt = core.InputsCacheSummary(inRecs)
	cerr := cleanup()
	// Whatever ended the run, the record lists the outputs it left: a
	// failed or aborted run's files are kept and must be accounted for.
	outRecs, outErr := hashOutputs(bg, outputs, outName)
	run.Outputs = append(run.Outputs, outRecs...)
	if runErr != nil {
		return teardown, errors.Join(runErr, cerr, outErr)
	}
	if cerr != nil {
		return teardown, errors.Join(cerr, outErr)
	}
	if inErr != nil {
		return teardown, errors.Join(fmt.Errorf("hash inputs: %w", inErr), outErr)
	}
	return teardown, outErr
}

// makeRunDirs checks that the outputs directories are empty and makes the
// directories the run writes to.
func makeRunDirs(outputs, give []string) error {
	for _, o := range outputs {
		if err := checkEmptyDir(o); err != nil {
			return err
		}
	}
	for _, d := range give {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("make %s: %w", d, err)
		}
	}
	return nil
}

// setUpRoot mounts a root run's overlay and inputs, or makes the
// directories of a rootless overlay the runtime mounts.
func setUpRoot(dir string, pl *execPlan) error {
	switch {
	case pl.RunRoot != "":
		if err := mountOverlay(pl); err != nil {
			return err
		}
		return mountInputs(pl)
	case pl.Overlay:
		// The upper directory gives the container's / its owner and
		// mode: everyone must be able to pass it.
		for _, d := range []string{"rootfs", "overlay/upper", "overlay/work"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}

// openLogs opens the run's stdout.log and stderr.log and tees the
// container's output to them and to stdio.
func openLogs(dir string, stdio runtime.Stdio) (runtime.Stdio, func(), error) {
	outLog, err := os.OpenFile(filepath.Join(dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return runtime.Stdio{}, nil, err
	}
	errLog, err := os.OpenFile(filepath.Join(dir, "stderr.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		outLog.Close()
		return runtime.Stdio{}, nil, err
	}
	cio := runtime.Stdio{Stdin: stdio.Stdin, Stdout: tee(outLog, stdio.Stdout), Stderr: tee(errLog, stdio.Stderr)}
	return cio, func() { outLog.Close(); errLog.Close() }, nil
}

// hashInputs makes the manifests of inputs (name → host path), taking
// from the input cache the files whose fingerprint it holds unchanged, and
// then refreshes the cache. The cache is an optimisation: when it cannot
// be read or written, the files are read in full.
func hashInputs(ctx context.Context, inputs map[string]string, ic inputCacheUse) ([]core.FileRecord, error) {
	var roots []string
	for _, name := range sortedKeys(inputs) {
		roots = append(roots, inputs[name])
	}
	var cached map[string]core.InputFingerprint
	if ic.cache != nil && !ic.rehash {
		cached, _ = ic.cache.InputFingerprints(ctx, roots)
	}
	var recs []core.FileRecord
	var errs error
	var hashedRoots []string
	keep := map[string]core.InputFingerprint{}
	for _, name := range sortedKeys(inputs) {
		r, k, err := CachedManifest(ctx, name, inputs[name], 0, cached)
		if err != nil {
			errs = errors.Join(errs, err)
			continue
		}
		recs = append(recs, r...)
		maps.Copy(keep, k)
		hashedRoots = append(hashedRoots, inputs[name])
	}
	if ic.cache != nil && len(hashedRoots) > 0 && !(len(hashedRoots) == len(roots) && maps.Equal(keep, cached)) {
		_ = ic.cache.PutInputFingerprints(ctx, hashedRoots, keep) // a lost fingerprint costs a re-hash
	}
	return recs, errs
}

// hashOutputs hashes the output directories that exist.
func hashOutputs(ctx context.Context, outputs []string, outName map[string]string) ([]core.FileRecord, error) {
	var recs []core.FileRecord
	var errs error
	for _, o := range outputs {
		if _, err := os.Lstat(o); errors.Is(err, os.ErrNotExist) {
			continue
		}
		r, err := Manifest(ctx, outName[o], o, 0)
		if err != nil {
			errs = errors.Join(errs, err)
			continue
		}
		recs = append(recs, r...)
	}
	if errs != nil {
		return recs, fmt.Errorf("hash outputs: %w", errs)
	}
	return recs, nil
}

// runDirs are a run's host directories by role, from its recorded mounts.
type runDirs struct {
	inputs  map[string]string // INPUT name → host path
	outputs []string
	outName map[string]string // output host path → container path
	scratch []string
	give    []string // made before the run and handed to its USER
}

func runDirsOf(run *core.Run) runDirs {
	d := runDirs{inputs: map[string]string{}, outName: map[string]string{}}
	seen := map[string]bool{}
	for _, m := range run.Mounts {
		if seen[m.Kind+"\x00"+m.Source] {
			continue
		}
		seen[m.Kind+"\x00"+m.Source] = true
		switch m.Kind {
		case core.MountInput:
			d.inputs[m.Name] = m.Source
		case core.MountOutput:
			d.outputs = append(d.outputs, m.Source)
			d.outName[m.Source] = m.Target
			d.give = append(d.give, m.Source)
		case core.MountScratch:
			d.scratch = append(d.scratch, m.Source)
			d.give = append(d.give, m.Source)
		case core.MountVolume:
			if _, err := os.Stat(m.Source); errors.Is(err, os.ErrNotExist) {
				d.give = append(d.give, m.Source)
			}
		}
	}
	return d
}

// cleanupRun undoes what executing a run made: the overlay root, the
// scratch directories (whatever happened) and the USER's ownership of the
// outputs, which return to the user running runprov.
func cleanupRun(dir string, pl *execPlan, own owners, scratch, outputs []string) error {
	return errors.Join(tearDownRoot(dir, pl), releaseDirs(dir, own, scratch, outputs))
}

// tearDownRoot unmounts and removes the run's root.
func tearDownRoot(dir string, pl *execPlan) error {
	var errs []error
	if pl.RunRoot != "" {
		errs = append(errs, unmountOverlay(pl))
	}
	if pl.Overlay {
		errs = append(errs, removeAll(filepath.Join(dir, "overlay")))
		os.Remove(filepath.Join(dir, "rootfs"))
	}
	return errors.Join(errs...)
}

// releaseDirs removes the scratch directories and gives the outputs back.
func releaseDirs(dir string, own owners, scratch, outputs []string) error {
	err := own.release(scratch, outputs)
	os.Remove(filepath.Join(dir, "scratch"))
	return err
}

// runSteps runs the steps in order and sets the run's status.
func runSteps(ctx context.Context, dir string, rt runtime.Runtime, cio runtime.Stdio, run *core.Run, pl *execPlan) error {
	for i := range run.Steps {
		st := &run.Steps[i]
		bundle := dir
		if i < len(pl.StepBundles) {
			bundle = filepath.Join(dir, pl.StepBundles[i])
		}
		id := fmt.Sprintf("runprov-%s-%d", run.ID, i)
		st.Start = time.Now().UTC()
		code, err := rt.Run(ctx, bundle, id, cio)
		st.End = time.Now().UTC()
		st.ExitCode = code
		if ctx.Err() != nil {
			cause := context.Cause(ctx)
			if errors.Is(cause, errTimeout) {
				k := ExitKilled
				run.Status, run.ExitCode = core.RunFailed, &k
				run.Reason = fmt.Sprintf("timeout: killed after %s", run.Limits.Timeout)
				st.ExitCode = k
				return nil
			}
			run.Status, run.Reason = core.RunAborted, abortReason(cause)
			return nil
		}
		step := "" // the main command; RUN steps are named
		if i < len(run.Steps)-1 {
			step = fmt.Sprintf("RUN step %d", i+1)
		}
		if code, what := execExit(err); code != 0 {
			// The runtime printed its error on the container's stderr (and
			// log): the reason names the status without repeating it.
			st.ExitCode = code
			run.Status, run.ExitCode = core.RunFailed, &code
			run.Reason = strings.TrimPrefix(fmt.Sprintf("%s: %s: %s (exit %d)", step, what, argv0(st.Argv), code), ": ")
			return nil
		}
		if err != nil {
			run.Status, run.Reason = core.RunFailed, err.Error()
			return err
		}
		if code != 0 {
			c := code
			run.Status, run.ExitCode = core.RunFailed, &c
			run.Reason = strings.TrimSpace(fmt.Sprintf("%s exited %d", step, code))
			return nil
		}
	}
	zero := 0
	run.Status, run.ExitCode = core.RunSucceeded, &zero
	return nil
}

// execExit is the exit status of a step whose command could not be
// started, as podman's: 127 when it is not in the image, 126 when it cannot
// be executed; 0 for any other err.
func execExit(err error) (int, error) {
	switch {
	case errors.Is(err, core.ErrCommandNotFound):
		return 127, core.ErrCommandNotFound
	case errors.Is(err, core.ErrNotExecutable):
		return 126, core.ErrNotExecutable
	}
	return 0, nil
}

func argv0(argv []string) string {
	if len(argv) == 0 {
		return ""
	}
	return argv[0]
}

// abortReason names what ended a run from outside.
func abortReason(cause error) string {
	msg := ""
	if cause != nil {
		msg = cause.Error()
	}
	switch {
	case strings.Contains(msg, "interrupt"):
		return "SIGINT"
	case strings.Contains(msg, "terminated"):
		return "SIGTERM"
	case strings.Contains(msg, "hangup"):
		return "SIGHUP"
	}
	if msg == "" {
		msg = "canceled"
	}
	return msg
}

// AbortSignal returns the signal number of an aborted run's reason (0 if
// none), for the exit status 128+N.
func AbortSignal(reason string) int {
	switch reason {
	case "SIGINT":
		return int(syscall.SIGINT)
	case "SIGTERM":
		return int(syscall.SIGTERM)
	case "SIGHUP":
		return int(syscall.SIGHUP)
	}
	return 0
}

// Finish hashes nothing and runs nothing: it stores the finished run
// (core.RunStore.FinishRun) even when ctx was cancelled (Ctrl-C), and
// rewrites run.json.
func (p *Producer) Finish(ctx context.Context, run *core.Run) error {
	ctx = context.WithoutCancel(ctx)
	if err := p.Runs.FinishRun(ctx, run); err != nil {
		return fmt.Errorf("record run %s: %w", run.ID, err)
	}
	return writeJSON(filepath.Join(p.Layout.Run(run.ID), "run.json"), run)
}

// Hooks let the caller print as a run goes.
type Hooks struct {
	// Prepared is called once the run is stored, before anything runs.
	Prepared func(*Prepared)
}

// Run prepares, executes locally and finishes a run. Outputs are hashed
// after the run (Execute). The returned run is final; err is a failure of
// runprov (the run may still be returned, failed or aborted).
func (p *Producer) Run(ctx context.Context, opts Options, stdio runtime.Stdio, h Hooks) (_ *core.Run, err error) {
	// The run is stored while its sandbox is set up.
	prep, err := p.prepare(ctx, opts)
	if err != nil {
		return nil, err
	}
	if h.Prepared != nil {
		h.Prepared(prep)
	}
	rt := p.Runtimes[prep.Run.Runtime]
	run, teardown, err := executeRun(ctx, prep.Dir, rt, stdio, execOptions{
		inputs: inputCacheUse{cache: p.InputCache, rehash: opts.Rehash},
		stored: prep.stored,
	})
	if serr := prep.stored(); serr != nil {
		// Nothing ran, and there is no record to finish.
		terr := teardown()
		removeAll(prep.Dir)
		return nil, errors.Join(serr, terr)
	}
	// The root comes down while the record is finished.
	defer func() { err = errors.Join(err, teardown()) }()
	if run == nil {
		run = prep.Run
		run.Status, run.Reason, run.Ended = core.RunFailed, fmt.Sprint(err), time.Now().UTC()
	}
	if prep.snapshot != nil {
		sr := prep.snapshot()
		run.EnvironmentSHA256, run.SystemKernelSHA256, run.Drift = sr.snap.EnvironmentSHA256, sr.snap.SystemKernelSHA256, sr.drift
		if sr.err != nil {
			// The container ran, but its record lacks the host.
			if run.Status == core.RunSucceeded {
				run.Status, run.Reason = core.RunFailed, sr.err.Error()
			}
			err = errors.Join(err, sr.err)
		}
	}
	ferr := p.Finish(ctx, run)
	if ferr != nil {
		return run, errors.Join(err, ferr)
	}
	return run, err
}

func tee(log *os.File, w io.Writer) io.Writer {
	if w == nil {
		return log
	}
	return io.MultiWriter(w, log)
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j] < ks[j-1]; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	return ks
}

// CleanStale removes what runs of dead runprov processes (SIGKILL, a
// crash) left in RuntimeDir: their containers (killed and deleted) and
// overlay roots. It returns how many runs it cleaned.
func (p *Producer) CleanStale(ctx context.Context) (int, error) {
	rd := p.RuntimeDir
	if rd == "" {
		rd = DefaultRuntimeDir
	}
	entries, err := os.ReadDir(rd)
	if err != nil || os.Geteuid() != 0 {
		return 0, nil
	}
	n := 0
	var errs []error
	for _, e := range entries {
		dir := filepath.Join(rd, e.Name())
		data, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 || unix.Kill(pid, 0) != unix.ESRCH {
			continue
		}
		for _, rt := range p.Runtimes {
			cs, _ := rt.List(ctx)
			for _, c := range cs {
				if strings.HasPrefix(c.ID, "runprov-"+e.Name()+"-") {
					errs = append(errs, rt.Delete(ctx, c.ID))
				}
			}
		}
		errs = append(errs, unmountOverlay(&execPlan{RunRoot: dir}))
		n++
	}
	return n, errors.Join(errs...)
}

func unixAccessW(dir string) error { return unix.Access(dir, unix.W_OK) }
