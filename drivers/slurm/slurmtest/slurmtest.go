// Package slurmtest gives tests a real Slurm cluster: the one on this
// machine, started with testdata/slurm/slurm-up.sh when it is not running
// and the test runs as root. Outside CI a test without a cluster skips; in
// CI it fails (core/coretest). It is not used by runprov itself.
package slurmtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runprov/runprov/core/coretest"
	"github.com/runprov/runprov/drivers/slurm"
)

var (
	upOnce sync.Once
	upErr  string
)

// Require returns a client of a Slurm cluster whose node is idle, starting
// the test cluster when needed and possible.
func Require(t testing.TB) *slurm.Client {
	t.Helper()
	coretest.RequireBinary(t, "sbatch")
	upOnce.Do(func() {
		if nodeReady() {
			return
		}
		if os.Geteuid() != 0 {
			upErr = "no Slurm node is idle and starting the test cluster needs root (run: sudo make slurm-up)"
			return
		}
		out, err := exec.Command(Script("slurm-up.sh")).CombinedOutput()
		if err != nil {
			upErr = "testdata/slurm/slurm-up.sh failed: " + err.Error() + "\n" + string(out)
		}
	})
	if upErr != "" {
		coretest.Unavailable(t, upErr)
	}
	return &slurm.Client{}
}

// Script returns the path of testdata/slurm/NAME in this repository.
func Script(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "slurm", name)
}

func nodeReady() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sinfo", "--noheader", "--Node", "--format=%T").Output()
	if err != nil {
		return false
	}
	for _, s := range strings.Fields(string(out)) {
		switch strings.TrimSuffix(s, "*") {
		case "idle", "mixed", "allocated", "completing":
			return true
		}
	}
	return false
}

// DownConf writes a copy of the cluster's slurm.conf whose controller port
// nobody listens on, and returns "SLURM_CONF=FILE": commands run with it
// see a controller that is down, while the real cluster keeps serving the
// other tests.
func DownConf(t testing.TB) string {
	t.Helper()
	src := os.Getenv("SLURM_CONF")
	if src == "" {
		src = "/etc/slurm/slurm.conf"
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("read slurm.conf: %v", err)
	}
	conf := regexp.MustCompile(`(?mi)^\s*SlurmctldPort\s*=.*$`).ReplaceAllString(string(b), "")
	conf += "\nSlurmctldPort=9\nMessageTimeout=2\n"
	p := filepath.Join(t.TempDir(), "slurm.conf")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return "SLURM_CONF=" + p
}

// Wait polls the scheduler until job id has finished and returns what it
// says, failing the test after timeout.
func Wait(t testing.TB, c *slurm.Client, id string, timeout time.Duration) slurm.JobInfo {
	t.Helper()
	return WaitFor(t, c, id, timeout, slurm.JobInfo.Finished)
}

// WaitFor polls the scheduler until job id satisfies ok.
func WaitFor(t testing.TB, c *slurm.Client, id string, timeout time.Duration, ok func(slurm.JobInfo) bool) slurm.JobInfo {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last slurm.JobInfo
	for time.Now().Before(deadline) {
		jobs, err := c.Jobs(context.Background(), []string{id})
		if err != nil {
			t.Fatalf("ask Slurm about job %s: %v", id, err)
		}
		if j, found := jobs[id]; found {
			last = j
			if ok(j) {
				return j
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("slurm job %s: still %+v after %v", id, last, timeout)
	return last
}
