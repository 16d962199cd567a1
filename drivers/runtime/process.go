package runtime

import (
	"errors"
	"os/exec"
	"syscall"
	"time"
)

// startProcess starts a runtime's own process (runc run, ch-run) in a
// process group of its own, which dies with runprov; done yields its Wait.
func startProcess(cmd *exec.Cmd) (done <-chan error, err error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second // a process that kept the output pipes open
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan error, 1)
	go func() { ch <- cmd.Wait() }()
	return ch, nil
}

// killGroup kills the process group of a process startProcess started.
func killGroup(cmd *exec.Cmd) { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

// waitStatus reads the Wait error of a process: its exit code, 128+N when
// signal N killed it (as a shell says); exited is false when err is not
// about how the process ended.
func waitStatus(err error) (code int, signaled, exited bool) {
	if err == nil {
		return 0, false, true
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return -1, false, false
	}
	if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
		return 128 + int(st.Signal()), true, true
	}
	return ee.ExitCode(), false, true
}
