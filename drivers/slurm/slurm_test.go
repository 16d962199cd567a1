package slurm_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/slurm"
	"github.com/runprov/runprov/drivers/slurm/slurmtest"
)

// writeScript writes a batch script for j with body into dir.
func writeScript(t *testing.T, dir string, j slurm.Job, body string) string {
	t.Helper()
	s, err := slurm.Script(j, body)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "job.sh")
	if err := os.WriteFile(p, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSubmitRunsJobOnNode(t *testing.T) {
	c := slurmtest.Require(t)
	ctx := context.Background()
	dir := t.TempDir()
	out := filepath.Join(dir, "with space", "out.txt")
	os.MkdirAll(filepath.Dir(out), 0o755)
	script := writeScript(t, dir, slurm.Job{Name: "runprov-test", WorkDir: dir, Output: out, CPUs: 1, MemoryBytes: 64 << 20, Timeout: time.Minute},
		"echo \"job=$SLURM_JOB_ID node=$SLURMD_NODENAME cpus=$SLURM_CPUS_PER_TASK pwd=$(pwd)\"\n")
	id, err := c.Submit(ctx, script)
	if err != nil {
		t.Fatal(err)
	}
	j := slurmtest.Wait(t, c, id, time.Minute)
	host, _ := os.Hostname()
	if j.State != "COMPLETED" || j.Node != strings.Split(host, ".")[0] || j.Partition == "" || j.ID != id {
		t.Fatalf("job %s: %+v; want COMPLETED on %s in a partition", id, j, host)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := "job=" + id + " node=" + j.Node + " cpus=1 pwd=" + dir + "\n"
	if string(b) != want {
		t.Fatalf("job output %q, want %q", b, want)
	}
}

// The Runfile's limits reach the scheduler as the job's request, and
// --sbatch-arg options given on the command line override them.
func TestLimitsAndArgsReachScheduler(t *testing.T) {
	c := slurmtest.Require(t)
	ctx := context.Background()
	dir := t.TempDir()
	script := writeScript(t, dir, slurm.Job{Output: "/dev/null", CPUs: 1.5, MemoryBytes: 100<<20 + 1, Timeout: 10 * time.Minute}, "true\n")
	cases := []struct {
		args []string
		want string
	}{
		{nil, "2|101M|15:00"},
		{[]string{"--time=30", "--mem=50M"}, "2|50M|30:00"},
	}
	for _, tc := range cases {
		// --begin keeps the job pending so it can be looked at, then cancelled.
		id, err := c.Submit(ctx, script, append([]string{"--begin=now+1hour"}, tc.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("squeue", "--noheader", "--jobs="+id, "--format=%C|%m|%l").Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("args %v: job %s requests %q (cpus|mem|time), want %q", tc.args, id, got, tc.want)
		}
		if err := c.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
		j := slurmtest.Wait(t, c, id, 30*time.Second)
		if j.State != "CANCELLED" || !strings.Contains(j.Describe(), "CANCELLED") || !strings.Contains(j.Describe(), "while pending") {
			t.Errorf("cancelled pending job: %+v, described as %q", j, j.Describe())
		}
	}
}

func TestCancelRunningJob(t *testing.T) {
	c := slurmtest.Require(t)
	ctx := context.Background()
	script := writeScript(t, t.TempDir(), slurm.Job{Output: "/dev/null"}, "sleep 300\n")
	id, err := c.Submit(ctx, script)
	if err != nil {
		t.Fatal(err)
	}
	slurmtest.WaitFor(t, c, id, time.Minute, func(j slurm.JobInfo) bool { return j.State == "RUNNING" })
	if err := c.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	j := slurmtest.Wait(t, c, id, time.Minute)
	if j.State != "CANCELLED" || j.Node == "" || strings.Contains(j.Describe(), "pending") {
		t.Fatalf("cancelled running job: %+v, described as %q", j, j.Describe())
	}
}

func TestArrayTasks(t *testing.T) {
	c := slurmtest.Require(t)
	ctx := context.Background()
	dir := t.TempDir()
	script := writeScript(t, dir, slurm.Job{Output: "/dev/null", ArrayTasks: 3},
		"echo $SLURM_ARRAY_TASK_ID > "+slurm.Quote(dir)+"/task-$SLURM_ARRAY_TASK_ID\n")
	id, err := c.Submit(ctx, script)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		task := id + "_" + string(rune('0'+i))
		j := slurmtest.Wait(t, c, task, time.Minute)
		if j.State != "COMPLETED" || j.ID != task {
			t.Errorf("task %s: %+v", task, j)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "task-"+string(rune('0'+i)))); err != nil || strings.TrimSpace(string(b)) != string(rune('0'+i)) {
			t.Errorf("task %d wrote %q, %v", i, b, err)
		}
	}
}

func TestUnknownJobIsAbsent(t *testing.T) {
	c := slurmtest.Require(t)
	jobs, err := c.Jobs(context.Background(), []string{"987654321", "987654321_3"})
	if err != nil || len(jobs) != 0 {
		t.Fatalf("unknown jobs: %v, %v; want none and no error", jobs, err)
	}
}

func TestSbatchMissing(t *testing.T) {
	c := &slurm.Client{Path: t.TempDir()}
	_, err := c.Submit(context.Background(), "/nonexistent/job.sh")
	if !errors.Is(err, core.ErrUnsupported) || !strings.Contains(err.Error(), "sbatch is not on PATH") {
		t.Fatalf("submit without sbatch: %v; want ErrUnsupported naming sbatch", err)
	}
	if _, err := c.Jobs(context.Background(), []string{"1"}); !errors.Is(err, core.ErrUnsupported) {
		t.Fatalf("jobs without squeue: %v", err)
	}
}

func TestControllerDown(t *testing.T) {
	slurmtest.Require(t)
	c := &slurm.Client{Env: []string{slurmtest.DownConf(t)}, QueryTimeout: 5 * time.Second}
	script := writeScript(t, t.TempDir(), slurm.Job{Output: "/dev/null"}, "true\n")
	_, err := c.Submit(context.Background(), script)
	var ce *slurm.CommandError
	if !errors.As(err, &ce) || !ce.ControllerDown() || !strings.Contains(err.Error(), "scontrol ping") {
		t.Fatalf("submit with the controller down: %v; want a CommandError that says so", err)
	}
	if _, err := c.Jobs(context.Background(), []string{"1"}); !errors.As(err, &ce) || !ce.ControllerDown() {
		t.Fatalf("jobs with the controller down: %v", err)
	}
}
