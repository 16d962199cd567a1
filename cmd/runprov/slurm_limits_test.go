package main

import (
	"math"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/slurm"
)

// scontrolJob is `scontrol show job -o ID` as key=value pairs.
func scontrolJob(t *testing.T, id string) map[string]string {
	t.Helper()
	out, err := exec.Command("scontrol", "show", "job", "-o", id).CombinedOutput()
	if err != nil {
		t.Fatalf("scontrol show job %s: %v\n%s", id, err, out)
	}
	m := map[string]string{}
	for _, f := range strings.Fields(string(out)) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

// slurmDuration reads a Slurm time limit: [D-]HH:MM:SS.
func slurmDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	var days int
	if d, rest, ok := strings.Cut(s, "-"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			t.Fatalf("time limit %q", s)
		}
		days, s = n, rest
	}
	p := strings.Split(s, ":")
	if len(p) != 3 {
		t.Fatalf("time limit %q is not HH:MM:SS", s)
	}
	var n [3]int
	for i, x := range p {
		v, err := strconv.Atoi(x)
		if err != nil {
			t.Fatalf("time limit %q", s)
		}
		n[i] = v
	}
	return time.Duration(days)*24*time.Hour + time.Duration(n[0])*time.Hour + time.Duration(n[1])*time.Minute + time.Duration(n[2])*time.Second
}

// TestSlurmLimitsToSbatch: a Runfile's LIMIT cpus, memory and timeout
// become the job's CPUs per task, memory and time limit (the timeout plus
// slurm.TimeMargin, rounded up to minutes), as scontrol reports them.
func TestSlurmLimitsToSbatch(t *testing.T) {
	requireSlurm(t)
	out, err := exec.Command("sinfo", "-h", "-o", "%c").Output()
	if err != nil {
		t.Fatalf("sinfo: %v", err)
	}
	nodeCPUs, _ := strconv.Atoi(strings.TrimSpace(strings.Split(string(out), "\n")[0]))
	for _, c := range []struct {
		limit   string
		cpus    float64
		memory  int64
		timeout time.Duration
	}{
		{"cpus=1 memory=64M timeout=2m", 1, 64 << 20, 2 * time.Minute},
		// Not Slurm's defaults: a fraction of a CPU rounds up, and the
		// time limit to the next minute.
		{"cpus=1.5 memory=100M timeout=90s", 1.5, 100 << 20, 90 * time.Second},
	} {
		t.Run(c.limit, func(t *testing.T) {
			wantCPUs := int(math.Ceil(c.cpus))
			if wantCPUs > nodeCPUs {
				t.Fatalf("the cluster's node has %d CPUs; this case needs %d", nodeCPUs, wantCPUs)
			}
			rs := newRunStore(t, "FROM IMAGE\nLIMIT "+c.limit+"\nCMD [\"/bin/sh\", \"-c\", \"echo limited\"]\n")
			var r core.Run
			errs, code := slurmRun(t, rs, &r, "--wait")
			if code != 0 || r.Slurm == nil || r.Slurm.JobID == "" || r.Status != core.RunSucceeded {
				t.Fatalf("exit %d, run %s %q slurm %+v\n%s", code, r.Status, r.Reason, r.Slurm, errs)
			}
			if r.Limits.CPUs != c.cpus || r.Limits.MemoryBytes != c.memory || r.Limits.Timeout != c.timeout {
				t.Errorf("recorded limits %+v", r.Limits)
			}
			job := scontrolJob(t, r.Slurm.JobID)
			if job["CPUs/Task"] != strconv.Itoa(wantCPUs) {
				t.Errorf("CPUs/Task=%s, want %d", job["CPUs/Task"], wantCPUs)
			}
			if want := strconv.FormatInt(c.memory>>20, 10) + "M"; job["MinMemoryNode"] != want {
				t.Errorf("MinMemoryNode=%s MinMemoryCPU=%s, want MinMemoryNode=%s", job["MinMemoryNode"], job["MinMemoryCPU"], want)
			}
			want := (c.timeout + slurm.TimeMargin + time.Minute - 1).Truncate(time.Minute)
			if got := slurmDuration(t, job["TimeLimit"]); got != want {
				t.Errorf("TimeLimit=%s (%v), want %v", job["TimeLimit"], got, want)
			}
			// --wait returns once the node wrote the run's record; the job
			// itself may still be finishing (COMPLETING, or RUNNING while
			// the batch script exits).
			for deadline := time.Now().Add(30 * time.Second); job["JobState"] == "RUNNING" || job["JobState"] == "COMPLETING"; {
				if time.Now().After(deadline) {
					break
				}
				time.Sleep(200 * time.Millisecond)
				job = scontrolJob(t, r.Slurm.JobID)
			}
			if job["JobState"] != "COMPLETED" {
				t.Errorf("JobState=%s, want COMPLETED", job["JobState"])
			}
		})
	}
}
