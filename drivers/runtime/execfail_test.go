package runtime

import (
	"errors"
	"testing"

	"github.com/runprov/runprov/core"
)

func TestExecFailureMessages(t *testing.T) {
	for _, c := range []struct {
		msg  string
		ch   bool // ch-run's stderr tail, else runc's log message
		want error
	}{
		{`runc run failed: unable to start container process: exec: "/x": stat /x: no such file or directory`, false, core.ErrCommandNotFound},
		{`runc run failed: unable to start container process: exec: "x": executable file not found in $PATH`, false, core.ErrCommandNotFound},
		{`runc run failed: unable to start container process: exec: "/etc/passwd": permission denied`, false, core.ErrNotExecutable},
		{`unable to start container process: exec /x: exec format error`, false, core.ErrNotExecutable},
		{`runc run failed: unable to start container process: error during container init: error mounting "/a" to rootfs at "/b": no such file or directory`, false, nil},
		{"ch-run[7]: error: can't execve(2): /x: No such file or directory (ch_core.c:410 2)\n", true, core.ErrCommandNotFound},
		{"ch-run[7]: can't execve(2): /etc/passwd: Permission denied (ch-run.c:99 13)\n", true, core.ErrNotExecutable},
		{"ch-run[7]: error: can't execve(2): /x: No such file or directory (ch_core.c:410 2)\nlater output\n", true, nil},
		{"some output\n", true, nil},
	} {
		var got error
		if c.ch {
			got = chExecFailure([]byte(c.msg))
		} else {
			got = execFailure(c.msg)
		}
		if c.want == nil && got != nil || c.want != nil && !errors.Is(got, c.want) {
			t.Errorf("%q: %v, want %v", c.msg, got, c.want)
		}
	}
}
