package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/sqlite"
)

// app is the state shared by all subcommands of one invocation.
type app struct {
	storeDir string
	json     bool
	csv      bool
	quiet    bool
	verbose  bool

	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger

	store  *sqlite.Store
	term   *components
	policy *core.Policy // the site policy; read by open
	// kernel, when set before open, returns the system kernel snapshot a
	// local run started collecting; wire hands it to the producer.
	kernel func() *core.SystemKernel
}

// execute runs runprov with args and returns the process exit code.
func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// Logs, progress and the container's stderr (and, with --json run, its
	// stdout) reach stderr from several goroutines.
	if _, ok := stderr.(*os.File); !ok {
		stderr = &lockedWriter{w: stderr}
	}
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCmd(a)
	// Registering the completions walks every command's flags: only a
	// shell asking for completions (runprov [flags] __complete ...) pays.
	if slices.Contains(args, cobra.ShellCompRequestCmd) || slices.Contains(args, cobra.ShellCompNoDescRequestCmd) {
		addCompletions(root, a) // completion.go
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	ran, err := root.ExecuteContextC(ctx)
	if a.store != nil {
		a.store.Close()
	}
	if err != nil {
		var es exitStatus
		if !errors.As(err, &es) {
			fmt.Fprintf(stderr, "runprov: %v\n", err)
			if h := hintFor(err, ran.CommandPath()); h != "" {
				fmt.Fprintf(stderr, "hint: %s\n", h)
			}
			if exitCode(err) == exitUsage {
				fmt.Fprintln(stderr, "see: runprov --help")
			}
		}
	}
	return exitCode(err)
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "runprov",
		Short: "Git-backed run-time provenance for containers",
		Long: `runprov records, runs and reproduces container runs described by Runfiles.

A Runfile pins an image by sha256 digest and says how to run it. runprov add
commits it into a git repository kept in the store's SQLite database; runprov
run executes a commit in a locked-down sandbox and records everything needed to
trust and repeat the run.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		// Bare runprov: the help, on stderr, and the usage error's status.
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(a.stderr)
			cmd.Help()
			return exitStatus{exitUsage}
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			switch {
			case a.verbose:
				level = slog.LevelDebug
			case a.quiet:
				level = slog.LevelError
			}
			a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
			if a.json && a.csv {
				return usagef("--json and --csv are mutually exclusive")
			}
			return nil
		},
	}
	// runprov --version prints what runprov version does; "{{" cannot occur.
	root.SetVersionTemplate(versionLine(versionInfo()) + "\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.storeDir, "store", defaultStoreDir(), "store directory (env RUNPROV_STORE)")
	pf.BoolVar(&a.json, "json", false, "print data as JSON")
	pf.BoolVar(&a.csv, "csv", false, "print tables as CSV")
	pf.BoolVarP(&a.quiet, "quiet", "q", false, "print only errors on stderr")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "print debug logs on stderr")

	root.AddCommand(
		newInitCmd(a),
		newAddCmd(a),
		newPushCmd(a),
		newPullCmd(a),
		newLogCmd(a),
		newReindexCmd(a),
		newCatCmd(a),
		newRunsCmd(a),
		newShowCmd(a),
		newDiffCmd(a),
		newExportCmd(a),
		newReproduceCmd(a),
		newQueryCmd(a),
		newFsckCmd(a),
		newConfigCmd(a),
		newImageCmd(a),
		newRunCmd(a),
		newExecPreparedCmd(a),
		newVersionCmd(a),
		newKeyCmd(a),
		newPolicyCmd(a),
		newVerifyCmd(a),
		newTraceCmd(a),
		newReportCmd(a),
		newReleaseCmd(a),
		newLogsCmd(a),
		newTagCmd(a),
	)
	return root
}

// defaultStoreDir is $RUNPROV_STORE, else $XDG_DATA_HOME/runprov, else
// ~/.local/share/runprov.
func defaultStoreDir() string {
	if d := os.Getenv("RUNPROV_STORE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "runprov")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "runprov-store"
	}
	return filepath.Join(home, ".local", "share", "runprov")
}

// open opens the store for a command that may change it, and wires the
// components, once per invocation. A store this user cannot write is refused.
func (a *app) open(ctx context.Context) (*components, error) {
	return a.openStore(ctx, true)
}

// openRead opens the store for a command that only reads it: a store this
// user cannot write (a read-only mount, a copy without write permission)
// opens read-only, without migrations, stale-run cleanup or Slurm ingest.
func (a *app) openRead(ctx context.Context) (*components, error) {
	return a.openStore(ctx, false)
}

func (a *app) openStore(ctx context.Context, write bool) (*components, error) {
	if a.term != nil {
		if write && a.store.ReadOnly() {
			return nil, storeReadOnly(a.store.Layout().Root)
		}
		return a.term, nil
	}
	if err := a.loadPolicy(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(a.storeDir)
	if err != nil {
		return nil, err
	}
	if sqlite.ReadOnly(dir) {
		if write {
			return nil, storeReadOnly(dir)
		}
		st, err := openSQLite(ctx, a, dir, true)
		if err != nil {
			return nil, err
		}
		a.store = st
		a.term = wire(a, st)
		return a.term, nil
	}
	st, err := openSQLite(ctx, a, dir, false)
	if err != nil {
		return nil, err
	}
	core.CleanStaleTemp(st.Layout().Tmp(), os.RemoveAll)
	a.store = st
	a.term = wire(a, st)
	if n, err := abortStaleRuns(ctx, st, a.term.producer); err != nil {
		a.log.Warn("mark runs of dead runprov processes aborted", "err", err)
	} else if n > 0 {
		a.log.Info("marked runs aborted: their runprov process ended without finishing them", "runs", n)
	}
	a.syncSlurm(ctx)
	return a.term, nil
}

// storeReadOnly refuses a command that would change a store this user
// cannot write.
func storeReadOnly(dir string) error {
	return advise(fmt.Errorf("%w: %s (a read-only mount, or no write permission for this user), and this command would change it", core.ErrStoreReadOnly, dir),
		adviceStoreReadOnly, "")
}

// lockedWriter serialises writes to a writer that is not safe for concurrent
// use (a bytes.Buffer in tests); an *os.File needs no lock.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
