package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/runprov/runprov/core"
)

// DefaultQueryTimeout bounds one squeue, sacct or scontrol call: a controller
// that is down makes them retry for tens of seconds, and a listing must not
// hang on it.
const DefaultQueryTimeout = 10 * time.Second

// Client runs Slurm's client commands. The zero value uses $PATH and the
// environment's Slurm configuration.
type Client struct {
	// Path, when not empty, is the PATH the commands are looked up in and run
	// with, instead of the process's.
	Path string
	// Env is added to the environment of every command, e.g. SLURM_CONF=FILE.
	Env []string
	// QueryTimeout bounds squeue, sacct and scontrol; 0 means
	// DefaultQueryTimeout. sbatch and scancel are bounded by ctx only.
	QueryTimeout time.Duration
	// Log receives debug lines for each command; nil logs nothing.
	Log *slog.Logger
}

// CommandError is a Slurm command that ran and failed.
type CommandError struct {
	Command string // "sbatch", "squeue", ...
	Args    []string
	Stderr  string // trimmed
	Err     error  // the *exec.ExitError, or the context's error
}

func (e *CommandError) Error() string {
	msg := e.Stderr
	if msg == "" {
		msg = e.Err.Error()
	}
	var hint string
	if e.ControllerDown() {
		hint = ": check that slurmctld runs (scontrol ping) and that SLURM_CONF names the right cluster"
	}
	return fmt.Sprintf("%s: %s%s", e.Command, msg, hint)
}

func (e *CommandError) Unwrap() error { return e.Err }

// ControllerDown reports whether the command could not reach slurmctld.
func (e *CommandError) ControllerDown() bool {
	s := strings.ToLower(e.Stderr)
	return strings.Contains(s, "unable to contact slurm controller") ||
		strings.Contains(s, "connection refused") || errors.Is(e.Err, context.DeadlineExceeded)
}

// lookPath finds name on c.Path or $PATH; the error wraps core.ErrUnsupported
// and says what to install.
func (c *Client) lookPath(name string) (string, error) {
	path := c.Path
	if path == "" {
		path = os.Getenv("PATH")
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s is not on PATH: run on a Slurm login node, or install Slurm's client commands (Debian: apt-get install slurm-client; a test cluster: make slurm-up)", core.ErrUnsupported, name)
}

// Available reports whether sbatch can be found, with the reason when not.
func (c *Client) Available() error {
	_, err := c.lookPath("sbatch")
	return err
}

// run runs a Slurm command and returns its stdout. A failure is a
// *CommandError carrying stderr; a missing command wraps core.ErrUnsupported.
func (c *Client) run(ctx context.Context, query bool, name string, args ...string) ([]byte, error) {
	bin, err := c.lookPath(name)
	if err != nil {
		return nil, err
	}
	if query {
		t := c.QueryTimeout
		if t <= 0 {
			t = DefaultQueryTimeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = os.Environ()
	if c.Path != "" {
		cmd.Env = append(cmd.Env, "PATH="+c.Path)
	}
	cmd.Env = append(cmd.Env, c.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	if c.Log != nil {
		c.Log.Debug("slurm command", "cmd", name, "args", args, "took", time.Since(start), "err", err)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (no answer)", ctx.Err())
		}
		return stdout.Bytes(), &CommandError{Command: name, Args: args, Stderr: strings.TrimSpace(stderr.String()), Err: err}
	}
	return stdout.Bytes(), nil
}
