package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
)

// logsPoll is how often logs --follow looks for more output and for the
// end of the run.
const logsPoll = 200 * time.Millisecond

// logsSlurmSync is how often logs --follow takes in Slurm records.
const logsSlurmSync = 2 * time.Second

func newLogsCmd(a *app) *cobra.Command {
	var onlyOut, onlyErr, follow bool
	cmd := &cobra.Command{
		Use:   "logs RUN [--stdout|--stderr] [--follow]",
		Short: "Print a run's stdout and stderr",
		Long: `Print what the run's container wrote, as kept in STORE/runs/RUN/stdout.log and
stderr.log: its stdout on stdout and its stderr on stderr, as podman logs
does. --stdout or --stderr prints only that one, on stdout. RUN is a run id,
a unique prefix, last or last~N.

--follow (-f) keeps printing what a queued or running run writes until it
ends.`,
		Example: `  runprov logs last
  runprov logs 3f2a1c --stderr | grep -i error
  runprov logs -f last`,
		Args: exactArgs("logs", "which run? (runprov runs lists them)"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			if onlyOut && onlyErr {
				return usagef("--stdout and --stderr: give one, or neither for both")
			}
			ctx := cmd.Context()
			t, err := a.openRead(ctx)
			if err != nil {
				return err
			}
			r, err := t.store.Run(ctx, pos[0])
			if err != nil {
				return err
			}
			dir := t.store.Layout().Run(r.ID)
			var streams []logStream
			if !onlyErr {
				streams = append(streams, logStream{path: filepath.Join(dir, "stdout.log"), w: a.stdout})
			}
			if !onlyOut {
				w := a.stderr
				if onlyErr {
					w = a.stdout
				}
				streams = append(streams, logStream{path: filepath.Join(dir, "stderr.log"), w: w})
			}
			var synced time.Time
			running := func() bool {
				// A Slurm run's record comes back through the store: take
				// it in now and then, as any runprov command does.
				if r.Executor == "slurm" && !t.store.ReadOnly() && time.Since(synced) > logsSlurmSync {
					a.syncSlurm(ctx)
					synced = time.Now()
				}
				cur, err := t.store.Run(ctx, r.ID)
				return err == nil && !cur.Status.Finished()
			}
			if !follow {
				running = func() bool { return false }
			}
			return copyLogs(ctx, streams, running)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&onlyOut, "stdout", false, "print only the run's stdout")
	f.BoolVar(&onlyErr, "stderr", false, "print only the run's stderr (on stdout)")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing until the run ends")
	return cmd
}

// logStream is one log file and where its bytes go.
type logStream struct {
	path string
	w    io.Writer
	off  int64
}

// copyLogs copies what the files hold, then, while running says the run
// goes on, what they grow by; a last pass after the end catches the tail.
func copyLogs(ctx context.Context, streams []logStream, running func() bool) error {
	for {
		more := running()
		for i := range streams {
			if err := streams[i].copyNew(); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil // Ctrl-C ends following, not the run
		case <-time.After(logsPoll):
		}
	}
}

// copyNew writes the bytes of the file past what was written before; a
// file not there (yet) has none.
func (s *logStream) copyNew() error {
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(s.off, io.SeekStart); err != nil {
		return err
	}
	n, err := io.Copy(s.w, f)
	s.off += n
	return err
}
