package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/runprov/runprov/core"
)

// ChRun runs bundles with Charliecloud's ch-run, the seed's original
// target. It reads the bundle's config.json and gives ch-run what it can
// express: the root (read-only), binds, the working directory, the
// environment, the user (-u/-g) and a private /tmp. It cannot mount binds
// read-only, isolate the network, filter syscalls or apply cgroup limits
// (see Guarantees), and when runprov runs as root the container's user is
// host root in ch-run's user namespace.
type ChRun struct {
	Binary string // "" = "ch-run" from PATH

	once    sync.Once
	version string
	verErr  error
}

var _ Runtime = (*ChRun)(nil)

// Name implements Runtime.
func (*ChRun) Name() string { return "ch-run" }

// Guarantees implements Runtime.
func (*ChRun) Guarantees() Guarantees {
	return Guarantees{UserMapping: os.Geteuid() != 0, RunsAsCaller: true}
}

func (c *ChRun) bin() string {
	if c.Binary != "" {
		return c.Binary
	}
	return "ch-run"
}

// Version implements Runtime (ch-run --version).
func (c *ChRun) Version(ctx context.Context) (string, error) {
	c.once.Do(func() {
		if _, err := exec.LookPath(c.bin()); err != nil {
			c.verErr = fmt.Errorf("runtime ch-run: %w: %v; install it: apt-get install charliecloud-runtime", ErrRuntimeMissing, err)
			return
		}
		cmd := exec.CommandContext(ctx, c.bin(), "--version")
		cmd.Env = chEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			c.verErr = fmt.Errorf("ch-run --version: %w: %s", err, strings.TrimSpace(string(out)))
			return
		}
		c.version = strings.TrimSpace(string(out))
	})
	return c.version, c.verErr
}

// chEnv is the environment ch-run itself needs: it refuses to start
// without $USER.
func chEnv() []string {
	env := os.Environ()
	if os.Getenv("USER") == "" {
		user := "root"
		if os.Geteuid() != 0 {
			user = fmt.Sprint(os.Geteuid())
		}
		env = append(env, "USER="+user)
	}
	return env
}

// ChRunArgs returns the ch-run command line for a spec; envFile is where the
// container environment is written for --set-env.
func ChRunArgs(s *specs.Spec, envFile string) ([]string, error) {
	if s.Process == nil || s.Root == nil {
		return nil, fmt.Errorf("ch-run: %w: the config has no process or root", core.ErrInvalid)
	}
	args := []string{"--no-passwd", "--private-tmp", "--unset-env=*", "--set-env=" + envFile,
		"-u", fmt.Sprint(s.Process.User.UID), "-g", fmt.Sprint(s.Process.User.GID), "-c", s.Process.Cwd}
	for _, m := range s.Mounts {
		if m.Type != "bind" {
			continue // ch-run makes its own /proc, /dev, /sys and (with -t) /tmp
		}
		args = append(args, "-b", m.Source+":"+m.Destination)
	}
	args = append(args, s.Root.Path, "--")
	return append(args, s.Process.Args...), nil
}

// ChRunBundleArgs returns the ch-run command line for the bundle's
// config.json, after writing the container's environment to
// BUNDLE/ch-run.env for --set-env.
func ChRunBundleArgs(bundle string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("ch-run: read the bundle: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("ch-run: %s/config.json: %w", bundle, err)
	}
	for _, e := range s.Process.Env {
		if strings.ContainsAny(e, "\n") {
			return nil, fmt.Errorf("ch-run: %w: environment variable %q has a newline, which ch-run's --set-env file cannot hold", core.ErrUnsupported, e)
		}
	}
	envFile := filepath.Join(bundle, "ch-run.env")
	if err := os.WriteFile(envFile, []byte(strings.Join(s.Process.Env, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	return ChRunArgs(&s, envFile)
}

// Run implements Runtime. ch-run has no container ids or state: the
// process is killed through its process group.
func (c *ChRun) Run(ctx context.Context, bundle, id string, stdio Stdio) (int, error) {
	args, err := ChRunBundleArgs(bundle)
	if err != nil {
		return -1, err
	}
	cmd := exec.Command(c.bin(), args...)
	cmd.Env = chEnv()
	stderr := &tailWriter{w: stdio.Stderr}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stderr
	done, err := startProcess(cmd)
	if err != nil {
		return -1, fmt.Errorf("start ch-run: %w", err)
	}
	select {
	case err := <-done:
		code, signaled, exited := waitStatus(err)
		switch {
		case !exited:
			return -1, fmt.Errorf("ch-run: %w", err)
		case code == 0 || signaled:
			return code, nil
		}
		if err := chExecFailure(stderr.tail()); err != nil {
			return -1, err
		}
		return code, nil
	case <-ctx.Done():
		killGroup(cmd)
		<-done
		return -1, ctx.Err()
	}
}

// chExecErr is ch-run's last line when it could not exec the command, e.g.
// "ch-run[7]: error: can't execve(2): /x: No such file or directory
// (ch_core.c:410 2)"; the last number is errno.
var chExecErr = core.LazyRegexp(`ch-run\[\d+\]: (?:error: )?can't execve\(2\): .* \(\S+ (\d+)\)\s*$`)

// chExecFailure returns, when the last line ch-run wrote says it could not
// exec the command, an error wrapping core.ErrCommandNotFound (ENOENT) or
// core.ErrNotExecutable; nil otherwise. Nothing of the container ran then,
// so the line is ch-run's own.
func chExecFailure(tail []byte) error {
	m := chExecErr().FindSubmatch(tail)
	switch {
	case m == nil:
		return nil
	case string(m[1]) == fmt.Sprint(int(syscall.ENOENT)):
		return fmt.Errorf("%w: %s", core.ErrCommandNotFound, strings.TrimSpace(string(m[0])))
	}
	return fmt.Errorf("%w: %s", core.ErrNotExecutable, strings.TrimSpace(string(m[0])))
}

// tailWriter passes writes on to w (nil: discards them) and keeps the last
// KiB written.
type tailWriter struct {
	w   io.Writer
	mu  sync.Mutex
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 1024 {
		t.buf = append(t.buf[:0:0], t.buf[len(t.buf)-1024:]...)
	}
	t.mu.Unlock()
	if t.w == nil {
		return len(p), nil
	}
	return t.w.Write(p)
}

func (t *tailWriter) tail() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf
}

// Kill implements Runtime; ch-run containers are killed by Run when its
// context ends.
func (*ChRun) Kill(context.Context, string, syscall.Signal) error { return nil }

// Delete implements Runtime; ch-run keeps no state.
func (*ChRun) Delete(context.Context, string) error { return nil }

// List implements Runtime: a ch-run container is its process, with no
// state to list.
func (*ChRun) List(context.Context) ([]Container, error) { return nil, nil }
