package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/runtime"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/plugins/env"
	"github.com/runprov/runprov/plugins/producer"
)

// runFlags are the flags of runprov run.
type runFlags struct {
	inputs, args []string
	opts         producer.Options
	sf           slurmFlags // cmd_slurm.go
	signKey      string
	pullSet      bool
}

func newRunCmd(a *app) *cobra.Command {
	rf := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run COMMIT[:PATH]|FILE [flags] [-- CMD ARGS...]",
		Short: "Run a committed Runfile in a locked-down sandbox and record the run",
		Long:  runLong,
		Example: `  runprov run 3f2a1c --input data=./survey.csv
  runprov run ./Runfile --input data=./survey.csv
  runprov run cohort:analysis/Runfile --note "for the reviewers"
  runprov run 3f2a1c --arg YEAR=2024 --outputs ./results --timeout 1h
  runprov run 3f2a1c --input data=./survey.csv -- /bin/sh -c 'ls -l /safe_data'
  runprov run 3f2a1c --no-input -- /bin/sh -c 'uname -a'`,
		Args: func(cmd *cobra.Command, pos []string) error {
			if n := cmd.ArgsLenAtDash(); n == 0 || len(pos) == 0 {
				return usagef("run: which commit? (runprov log lists them; a Runfile's path adds and runs it)")
			} else if n > 1 || (n < 0 && len(pos) > 1) {
				return usagef("run takes one COMMIT; put the command after --, like: runprov run COMMIT -- CMD ARGS")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, pos []string) error {
			rf.pullSet = cmd.Flags().Changed("pull")
			return a.runCommand(cmd.Context(), pos, cmd.ArgsLenAtDash(), rf)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&rf.inputs, "input", nil, "bind host `NAME=PATH` read-only at the Runfile's INPUT NAME (repeat)")
	f.BoolVar(&rf.opts.NoInput, "no-input", false, "run a TRE-layout Runfile (no INPUT, OUTPUT or SCRATCH lines) without input data")
	f.StringVar(&rf.opts.OutputsDir, "outputs", "", "host `DIR` for the outputs, new or empty (default STORE/runs/RUN/outputs)")
	f.StringArrayVar(&rf.args, "arg", nil, "set the Runfile's ARG `K=V` (repeat)")
	f.DurationVar(&rf.opts.Timeout, "timeout", 0, "kill the run after this `duration` (overrides LIMIT timeout)")
	f.StringVar(&rf.opts.Runtime, "runtime", "runc", "container runtime: runc or ch-run")
	f.BoolVar(&rf.opts.AllowWeakerSandbox, "allow-weaker-sandbox", false, "let a runtime run that cannot give every guarantee (recorded)")
	f.StringArrayVar(&rf.opts.Devices, "device", nil, "give the run the CDI device `VENDOR/CLASS=NAME` too, like nvidia.com/gpu=0 (repeat)")
	f.StringVar(&rf.opts.Pull, "pull", producer.PullDefault, "pull a missing image by digest: missing or never (default: never when the store requires approval, else missing)")
	f.StringVar(&rf.opts.Note, "note", "", "say what the run is for, in `TEXT` kept with it (show, runs --json, exports)")
	f.BoolVar(&rf.opts.Rehash, "rehash", false, "read every input file in full, even those whose size, inode and times are unchanged since they last hashed")
	f.StringVar(&rf.signKey, "sign-key", "", "sign the run record with this private `KEY` file (default: the site policy's sign_key)")
	addSlurmFlags(f, &rf.sf)
	return cmd
}

// runCommand checks run's arguments and flags, then runs here or submits
// to Slurm. dash is where -- fell among pos (-1: none).
func (a *app) runCommand(ctx context.Context, pos []string, dash int, rf *runFlags) error {
	opts, sf := rf.opts, rf.sf
	opts.Commit = pos[0]
	if dash >= 0 {
		opts.Command = pos[dash:]
		if len(opts.Command) == 0 {
			return usagef("nothing after --: give the command to run, or leave out --")
		}
	}
	var err error
	if opts.Inputs, err = keyValues("--input", rf.inputs); err != nil {
		return err
	}
	if opts.NoInput && len(opts.Inputs) > 0 {
		return usagef("--no-input with --input: give one or the other")
	}
	if opts.Args, err = keyValues("--arg", rf.args); err != nil {
		return err
	}
	if rf.pullSet && opts.Pull != producer.PullMissing && opts.Pull != producer.PullNever {
		return usagef("--pull %q: want missing or never", opts.Pull)
	}
	if err := sf.check(opts); err != nil {
		return err
	}
	// A run's process lives for milliseconds and allocates a few MB, which
	// the default pacing would collect several times over for nothing.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	// A local run snapshots this host: start reading it (mostly
	// /proc/sys) while the store opens. A refused run drops it.
	if sf.executor != "slurm" {
		a.kernel = startKernelSnapshot(ctx)
	}
	t, err := a.open(ctx)
	if err != nil {
		return err
	}
	if isFile(opts.Commit) {
		if opts.Commit, err = a.commitRunfile(ctx, t, opts.Commit); err != nil {
			return err
		}
	}
	if err := a.policy.CheckWeakerSandbox(opts.AllowWeakerSandbox); err != nil {
		return err
	}
	opts.Progress = a.progress()
	if sf.executor == "slurm" {
		if err := a.slurmUnsigned(rf.signKey); err != nil {
			return err
		}
		return a.runSlurm(ctx, opts, sf)
	}
	signer, err := a.recordSigner(rf.signKey) // sign.go
	if err != nil {
		return err
	}
	return a.run(ctx, t.producer, opts, signer)
}

// runLong is run's --help.
const runLong = `Run the Runfile recorded at COMMIT and record everything about the run. COMMIT
is a hash or unique prefix, a repository name (its newest commit), REPO~N,
HEAD or HEAD~N; :PATH names a Runfile of that commit's tree, needed when the
commit or repository records several. FILE, a Runfile on disk, is added
first as runprov add FILE would (without --repo) and its commit printed.

Before anything runs, runprov checks the Runfile and its ARGs, that the image
is in the store (pulling it by digest when it is missing and a registry
answers; a store that requires approval pulls only with --pull missing),
that every blob of it still hashes to its digest, that it is approved when
the store requires approval, that every --input exists and that
the outputs directory is new or empty. Any refusal exits 125.

The sandbox (runc): a user namespace in which the process runs as the Runfile's
USER (default 65534:65534) mapped to an unprivileged host id; a network
namespace with loopback only; a read-only root; INPUTs bound read-only, nosuid,
nodev (as root through an idmapped mount, so USER reads the owner's private
files; otherwise an input USER cannot read is refused); OUTPUTs bound read-write to --outputs (default STORE/runs/RUN/outputs);
SCRATCH directories and /tmp writable and removed after the run, TMPDIR set to
the first scratch; VOLUMEs from STORE/volumes/NAME; no capabilities, no new
privileges, runc's masked /proc and /sys paths, a seccomp filter denying
mount, ptrace, bpf, keyctl, namespaces, modules, reboot and the like; LIMITs
as cgroup limits where the host allows (the record says when not) and a
timeout that kills. A Runfile without INPUT, OUTPUT or SCRATCH gets the TRE
layout: --input data=PATH at /safe_data (and /inputs), outputs at
/safe_outputs (and /outputs), scratch at /scratch; such a run needs
--input data=PATH, or --no-input to run without input data. Every INPUT a
Runfile declares needs its --input NAME=PATH; a missing one is refused.

RUN lines run first, each as its own container with the same mounts; the run
stops at the first that fails. Then the main command (ENTRYPOINT + CMD, or
CMD replaced by what follows --).

The run id is printed on stderr at the start, with the drift of this host
since the commit's previous run. The container's stdout and stderr stream to
the terminal and to STORE/runs/RUN/stdout.log and stderr.log. runprov exits
with the container's status (137 when the timeout killed it, 130 on Ctrl-C,
which kills the container and records the run aborted); 125 when runprov
itself failed. The last line on stderr names the outputs directory. With
--json one JSON object is printed on stdout at the end: id, status,
exit_code and outputs_dir first, then the rest of the run record (the
container's stdout then goes to stderr).

--runtime ch-run (Charliecloud) cannot bind inputs read-only, isolate the
network or filter syscalls; it is refused unless --allow-weaker-sandbox,
which the run records.

--executor slurm prepares the run here (every check above), stores it queued
and submits a batch job that runs it on the allocated node with the same
store; it prints the run id and returns at once (--wait: waits and exits with
the run's status). LIMITs become sbatch options (--cpus-per-task, --mem,
--time); --array N makes N runs (tasks 0 to N-1), --array A-B one per task A
to B. The node writes the finished record to STORE/runs/RUN/record.json,
which any later runprov command takes in.`

// isFile reports whether name is a file on disk: run FILE adds it first.
func isFile(name string) bool {
	fi, err := os.Stat(name)
	return err == nil && fi.Mode().IsRegular()
}

// commitRunfile adds the Runfile at path, as runprov add would without
// --repo, and returns the COMMIT:PATH to run; it prints the commit.
func (a *app) commitRunfile(ctx context.Context, t *components, path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read runfile: %w", err)
	}
	res, err := a.addRunfile(ctx, t, path, filepath.Base(path), "", "", data) // cmd_add.go
	if err != nil {
		return "", err
	}
	fmt.Fprintf(a.stderr, "runprov: %s is commit %s (repo %s, path %s)\n", path, res.Hash, res.Repo, res.Path)
	return res.Hash + ":" + res.Path, nil
}

// keyValues parses repeated K=V flags.
func keyValues(flag string, vals []string) (map[string]string, error) {
	m := map[string]string{}
	for _, v := range vals {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return nil, usagef("%s %q: want NAME=VALUE", flag, v)
		}
		if _, dup := m[k]; dup {
			return nil, usagef("%s %s is given twice", flag, k)
		}
		m[k] = val
	}
	return m, nil
}

// run runs and reports one run; the error carries the exit status.
func (a *app) run(ctx context.Context, p *producer.Producer, opts producer.Options, signer *recordSigner) error {
	stdout := a.stdout
	if a.json {
		stdout = a.stderr // stdout is for the record
	}
	stdio := runtime.Stdio{Stdout: stdout, Stderr: a.stderr}
	hooks := producer.Hooks{Prepared: func(prep *producer.Prepared) {
		r := prep.Run
		if !a.quiet {
			fmt.Fprintf(a.stderr, "runprov: run %s (commit %s, image %s, %s %s)\n", r.ID, shortHash(r.Commit), r.ImageDigest, r.Runtime, r.RuntimeVersion)
			if r.Limits.Note != "" {
				fmt.Fprintf(a.stderr, "runprov: note: %s\n", r.Limits.Note)
			}
			if r.WeakerSandbox {
				fmt.Fprintf(a.stderr, "runprov: warning: %s gives a weaker sandbox (--allow-weaker-sandbox); the run records it\n", r.Runtime)
			}
		}
	}}
	run, err := p.Run(ctx, opts, stdio, hooks)
	if run == nil {
		return err
	}
	signErr := a.signFinished(ctx, signer, run)
	outDir := a.outputsDir(opts, run)
	if a.json {
		if perr := printJSON(a.stdout, runResult{ID: run.ID, Status: run.Status, ExitCode: run.ExitCode, OutputsDir: outDir, Run: run}); perr != nil && err == nil {
			err = perr
		}
	}
	if !a.quiet {
		printDrift(a, run)
		took := run.Ended.Sub(run.Started).Round(time.Millisecond)
		switch run.Status {
		case core.RunSucceeded:
			fmt.Fprintf(a.stderr, "runprov: run %s succeeded in %s\n", core.ShortRunID(run.ID), took)
		default:
			fmt.Fprintf(a.stderr, "runprov: run %s %s: %s\n", core.ShortRunID(run.ID), run.Status, run.Reason)
		}
		// The last line says where the outputs are.
		fmt.Fprintf(a.stderr, "runprov: outputs: %d files in %s\n", len(run.Outputs), outDir)
	}
	if err != nil {
		return err
	}
	if signErr != nil {
		return signErr
	}
	return runExitError(run)
}

// runResult is what run --json prints at the end: the run's id, status,
// exit code and outputs directory first, then the rest of its record (the
// outer fields hide the record's own of the same names).
type runResult struct {
	ID         string         `json:"id"`
	Status     core.RunStatus `json:"status"`
	ExitCode   *int           `json:"exit_code,omitempty"`
	OutputsDir string         `json:"outputs_dir"`
	*core.Run
}

// outputsDir is the host directory that holds run's outputs.
func (a *app) outputsDir(opts producer.Options, run *core.Run) string {
	if opts.OutputsDir != "" {
		if abs, err := filepath.Abs(opts.OutputsDir); err == nil {
			return abs
		}
		return opts.OutputsDir
	}
	return filepath.Join(a.store.Layout().Run(run.ID), "outputs")
}

// printDrift says how this host differs from the one of the commit's
// previous run; the snapshot is taken while the run starts, so this comes
// after the run's own output.
func printDrift(a *app, run *core.Run) {
	if run.Drift != "" {
		fmt.Fprintf(a.stderr, "runprov: this host changed since the commit's last run: %s\n", run.Drift)
	}
}

// hostProbe fills producer.HostProbe with plugins/env and the store.
type hostProbe struct {
	st *sqlite.Store
	// kernel, when set, returns the system kernel snapshot that
	// startKernelSnapshot began collecting; Snapshot collects it otherwise.
	kernel func() *core.SystemKernel
}

// startKernelSnapshot collects this host's system kernel snapshot in the
// background (without the runtime, which Snapshot fills in); the returned
// function waits for it. It is collected once, for one run.
func startKernelSnapshot(ctx context.Context) func() *core.SystemKernel {
	ch := make(chan *core.SystemKernel, 1)
	go func() { ch <- env.CollectSystemKernel(ctx, env.RuntimeInfo{}) }()
	return sync.OnceValue(func() *core.SystemKernel { return <-ch })
}

func (h hostProbe) Snapshot(ctx context.Context, name, version string) (producer.Snapshot, error) {
	e, _ := env.CollectEnvironment() // a source it cannot read stays empty
	esha, err := h.st.PutEnvironment(ctx, e)
	if err != nil {
		return producer.Snapshot{}, err
	}
	var k *core.SystemKernel
	if h.kernel != nil {
		k = h.kernel()
		k.Runtime = env.RuntimeInfo{Name: name, Version: version}
	} else {
		k = env.CollectSystemKernel(ctx, env.RuntimeInfo{Name: name, Version: version})
	}
	ksha, err := h.st.PutSystemKernel(ctx, k)
	if err != nil {
		return producer.Snapshot{}, err
	}
	return producer.Snapshot{EnvironmentSHA256: esha, SystemKernelSHA256: ksha}, nil
}

func (h hostProbe) Drift(ctx context.Context, prevSHA, curSHA string) (string, error) {
	prev, err := h.st.SystemKernel(ctx, prevSHA)
	if err != nil {
		return "", err
	}
	cur, err := h.st.SystemKernel(ctx, curSHA)
	if err != nil {
		return "", err
	}
	return env.Compare(prev, cur).Summary(), nil
}

// abortStaleRuns marks aborted the running runs of runprov processes that
// died (app.open calls it once per invocation) and removes the containers,
// overlay roots and scratch directories they left; the outputs they left
// are hashed into their records.
func abortStaleRuns(ctx context.Context, st *sqlite.Store, p *producer.Producer) (int, error) {
	if os.Geteuid() == 0 {
		if _, err := p.CleanStale(ctx); err != nil {
			return 0, err
		}
	}
	host, _ := os.Hostname()
	var errs []error
	ids, err := st.AbortStaleRuns(ctx, func(pid int, h, start string) bool {
		if h != host {
			return true // another machine's: cannot tell
		}
		if start != "" {
			// The same pid is the same process only if it started then.
			return core.ProcessStart(pid) == start
		}
		return core.ProcessAlive(pid)
	}, func(id string) []core.FileRecord {
		outputs, err := p.CleanAbortedRun(ctx, id)
		errs = append(errs, err)
		return outputs
	})
	if err != nil {
		return 0, err
	}
	return len(ids), errors.Join(errs...)
}
