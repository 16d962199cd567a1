package runtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/runprov/runprov/core"
)

// Runc runs bundles with runc. Its state lives in Root (runc --root), a
// directory of the store, so runprov's containers never mix with those of
// the system's runc, podman or docker.
type Runc struct {
	Binary string // "" = "runc" from PATH
	Root   string // runc --root: STORE/runtime/runc
	// VersionCache, when set, keeps `runc --version` in this file, keyed
	// by the binary's inode, size and times: every run records the
	// version, and asking runc costs a process start.
	VersionCache string

	once    sync.Once
	version string
	verErr  error
}

var _ Runtime = (*Runc)(nil)

// Name implements Runtime.
func (*Runc) Name() string { return "runc" }

// Guarantees implements Runtime: runc gives all of them (cgroup limits
// where the host lets it; the producer checks that).
func (*Runc) Guarantees() Guarantees {
	return Guarantees{ReadOnlyBinds: true, NetworkIsolated: true, Seccomp: true, Cgroups: true, UserMapping: true, RootlessOverlay: true, Devices: true}
}

func (r *Runc) bin() string {
	if r.Binary != "" {
		return r.Binary
	}
	return "runc"
}

// Available reports whether the binary is there, with an error saying how
// to install it.
func (r *Runc) Available() error {
	if _, err := exec.LookPath(r.bin()); err != nil {
		return fmt.Errorf("runtime runc: %w: %v; install it: apt-get install runc", ErrRuntimeMissing, err)
	}
	return nil
}

// ErrRuntimeMissing is a runtime binary that is not installed.
var ErrRuntimeMissing = errors.New("container runtime not installed")

// Version implements Runtime: the number of `runc --version`'s first line.
func (r *Runc) Version(ctx context.Context) (string, error) {
	r.once.Do(func() {
		if err := r.Available(); err != nil {
			r.verErr = err
			return
		}
		r.version, r.verErr = cachedVersion(r.VersionCache, r.bin(), func() (string, error) {
			out, err := exec.CommandContext(ctx, r.bin(), "--version").Output()
			if err != nil {
				return "", fmt.Errorf("runc --version: %w", err)
			}
			line, _, _ := strings.Cut(string(out), "\n")
			return strings.TrimSpace(strings.TrimPrefix(line, "runc version")), nil
		})
	})
	return r.version, r.verErr
}

// cachedVersion returns ask(), remembered in file for as long as the
// binary bin is the same file (inode, size, modification and change time).
func cachedVersion(file, bin string, ask func() (string, error)) (string, error) {
	if file == "" {
		return ask()
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return ask()
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return ask()
	}
	key := fmt.Sprintf("%s %d %d %d.%d %d.%d", path, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
	var c struct{ Key, Version string }
	if data, err := os.ReadFile(file); err == nil && json.Unmarshal(data, &c) == nil && c.Key == key && c.Version != "" {
		return c.Version, nil
	}
	v, err := ask()
	if err != nil {
		return "", err
	}
	c.Key, c.Version = key, v
	if data, err := json.Marshal(c); err == nil && os.MkdirAll(filepath.Dir(file), 0o700) == nil {
		tmp := fmt.Sprintf("%s.%d", file, os.Getpid())
		if os.WriteFile(tmp, data, 0o600) == nil {
			os.Rename(tmp, file)
		}
	}
	return v, nil
}

func (r *Runc) base() []string {
	return []string{"--root", r.Root}
}

// Run implements Runtime with `runc run`, which creates, starts, waits for
// and deletes the container. runc gets its own process group so that a
// Ctrl-C on the terminal reaches runprov only, which then decides to kill
// the container; it dies with runprov (Pdeathsig).
func (r *Runc) Run(ctx context.Context, bundle, id string, stdio Stdio) (int, error) {
	if err := os.MkdirAll(r.Root, 0o700); err != nil {
		return -1, fmt.Errorf("runc state directory: %w", err)
	}
	logPath := filepath.Join(bundle, "runc.log")
	os.Remove(logPath)
	args := append(r.base(), "--log", logPath, "--log-format", "json", "run", "--bundle", bundle, id)
	cmd := exec.Command(r.bin(), args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	done, err := startProcess(cmd)
	if err != nil {
		return -1, fmt.Errorf("start runc: %w", err)
	}
	select {
	case err := <-done:
		return r.exitOf(err, logPath)
	case <-ctx.Done():
	}
	// Killed from outside (Ctrl-C, SIGTERM, timeout): kill the container,
	// then runc if it does not end, then make sure the container is gone.
	bg := context.WithoutCancel(ctx)
	r.Kill(bg, id, syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		killGroup(cmd)
		<-done
	}
	if err := r.Delete(bg, id); err != nil {
		return -1, errors.Join(ctx.Err(), err)
	}
	return -1, ctx.Err()
}

// exitOf turns runc's exit into the container's status, or into an error
// when runc itself failed (it logged an error).
func (r *Runc) exitOf(err error, logPath string) (int, error) {
	code, _, exited := waitStatus(err)
	switch {
	case !exited:
		return -1, fmt.Errorf("runc: %w", err)
	case code == 0:
		return 0, nil
	}
	if msg := runcError(logPath); msg != "" {
		if sentinel := execFailure(msg); sentinel != nil {
			return -1, fmt.Errorf("%w: %s", sentinel, msg)
		}
		return -1, fmt.Errorf("runc could not run the container: %s", msg)
	}
	return code, nil
}

// execFailure classifies runc's error when it could not exec the
// container's command: "... unable to start container process: exec: "X":
// stat X: no such file or directory" (or "executable file not found in
// $PATH") when it is not in the image, another exec error (permission
// denied, exec format error) when it cannot be executed; nil otherwise.
func execFailure(msg string) error {
	_, tail, ok := strings.Cut(msg, "unable to start container process: exec")
	switch {
	case !ok || !strings.HasPrefix(tail, ": ") && !strings.HasPrefix(tail, " "):
		return nil
	case strings.Contains(tail, "no such file or directory") || strings.Contains(tail, "executable file not found"):
		return core.ErrCommandNotFound
	}
	return core.ErrNotExecutable
}

// runcError returns the error messages runc logged, "" when none.
func runcError(logPath string) string {
	data, err := os.ReadFile(logPath)
	if err != nil {
		return ""
	}
	var msgs []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var e struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &e) == nil && (e.Level == "error" || e.Level == "fatal") {
			msgs = append(msgs, e.Msg)
		}
	}
	return strings.Join(msgs, "; ")
}

// Kill implements Runtime.
func (r *Runc) Kill(ctx context.Context, id string, sig syscall.Signal) error {
	out, err := exec.CommandContext(ctx, r.bin(), append(r.base(), "kill", id, fmt.Sprint(int(sig)))...).CombinedOutput()
	if err != nil && !notExist(out) {
		return fmt.Errorf("runc kill %s: %w: %s", id, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Delete implements Runtime.
func (r *Runc) Delete(ctx context.Context, id string) error {
	out, err := exec.CommandContext(ctx, r.bin(), append(r.base(), "delete", "--force", id)...).CombinedOutput()
	if err != nil && !notExist(out) {
		return fmt.Errorf("runc delete %s: %w: %s", id, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func notExist(out []byte) bool {
	s := string(out)
	return strings.Contains(s, "does not exist") || strings.Contains(s, "not exist") || strings.Contains(s, "container not running")
}

// Container is one entry of `runc list`.
type Container struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"`
	Bundle string `json:"bundle"`
}

// List returns the containers in Root (runc list).
func (r *Runc) List(ctx context.Context) ([]Container, error) {
	if _, err := os.Stat(r.Root); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	out, err := exec.CommandContext(ctx, r.bin(), append(r.base(), "list", "--format", "json")...).Output()
	if err != nil {
		return nil, fmt.Errorf("runc list: %w", err)
	}
	var cs []Container
	if s := strings.TrimSpace(string(out)); s != "" && s != "null" {
		if err := json.Unmarshal(out, &cs); err != nil {
			return nil, fmt.Errorf("runc list: %w", err)
		}
	}
	return cs, nil
}
