package slurm

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/runprov/runprov/core"
)

// TimeMargin is added to a run's timeout for the Slurm time limit: runprov
// enforces the timeout itself and needs the rest to record it (kill the
// container, hash outputs, write the record) before Slurm kills the job.
const TimeMargin = 5 * time.Minute

// Job is how to submit a batch script: runprov's options for it, which
// Script writes as #SBATCH directives.
type Job struct {
	Name    string // --job-name
	WorkDir string // --chdir; "" leaves sbatch's default (the submit directory)
	Output  string // --output; "" leaves sbatch's default

	// Limits of the run, mapped to --cpus-per-task, --mem and --time.
	CPUs        float64
	MemoryBytes int64
	Timeout     time.Duration

	// ArrayTasks > 0 submits an array of that many tasks, numbered from
	// ArrayFirst.
	ArrayTasks int
	ArrayFirst int
}

// Options returns the sbatch options for j, in the order Script writes them.
func Options(j Job) []string {
	var args []string
	if j.Name != "" {
		args = append(args, "--job-name="+j.Name)
	}
	if j.WorkDir != "" {
		args = append(args, "--chdir="+j.WorkDir)
	}
	if j.Output != "" {
		args = append(args, "--output="+j.Output)
	}
	if j.CPUs > 0 {
		args = append(args, "--cpus-per-task="+strconv.Itoa(int(math.Ceil(j.CPUs))))
	}
	if j.MemoryBytes > 0 {
		const mib = 1 << 20
		args = append(args, "--mem="+strconv.FormatInt((j.MemoryBytes+mib-1)/mib, 10)+"M")
	}
	if j.Timeout > 0 {
		args = append(args, "--time="+TimeLimit(j.Timeout+TimeMargin))
	}
	if j.ArrayTasks > 0 {
		args = append(args, fmt.Sprintf("--array=%d-%d", j.ArrayFirst, j.ArrayFirst+j.ArrayTasks-1))
	}
	return args
}

// TimeLimit formats d as a Slurm time limit, "D-HH:MM:SS", rounded up to
// whole minutes (Slurm's granularity).
func TimeLimit(d time.Duration) string {
	mins := int64((d + time.Minute - 1) / time.Minute)
	if mins < 1 {
		mins = 1
	}
	return fmt.Sprintf("%d-%02d:%02d:00", mins/(24*60), mins/60%24, mins%60)
}

// Submit submits the batch script at path with sbatch and returns the job
// id (for an array, the array's job id; task i is "ID_i"). args are given to
// sbatch on its command line, where they override the script's #SBATCH
// directives (a site's --partition, --account, a longer --time). A missing
// sbatch wraps core.ErrUnsupported; a refused submission is a *CommandError.
func (c *Client) Submit(ctx context.Context, path string, args ...string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("submit: %w: no batch script", core.ErrInvalid)
	}
	argv := append(append([]string{"--parsable"}, args...), path)
	out, err := c.run(ctx, false, "sbatch", argv...)
	if err != nil {
		return "", fmt.Errorf("submit job: %w", err)
	}
	// --parsable prints "ID" or "ID;CLUSTER".
	id, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";")
	if id == "" || strings.Trim(id, "0123456789") != "" {
		return "", fmt.Errorf("submit job: sbatch printed %q, not a job id", strings.TrimSpace(string(out)))
	}
	return id, nil
}

// Cancel cancels job id (an array task as "ID_TASK") with scancel.
func (c *Client) Cancel(ctx context.Context, id string) error {
	if _, err := c.run(ctx, false, "scancel", id); err != nil {
		return fmt.Errorf("cancel job %s: %w", id, err)
	}
	return nil
}
