package slurm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// JobInfo is what the scheduler says of one job or array task.
type JobInfo struct {
	ID        string    `json:"id"`    // "123", or "123_4" for an array task
	State     string    `json:"state"` // PENDING, RUNNING, COMPLETED, CANCELLED, TIMEOUT, ...
	Reason    string    `json:"reason,omitempty"`
	By        string    `json:"by,omitempty"` // uid that cancelled the job, when sacct knows
	Node      string    `json:"node,omitempty"`
	Partition string    `json:"partition,omitempty"`
	ExitCode  string    `json:"exit_code,omitempty"` // "STATUS:SIGNAL" as Slurm prints it
	End       time.Time `json:"end,omitzero"`
	Source    string    `json:"source"` // "squeue", "sacct", "sacct --completion"
}

// finalStates are the job states Slurm never leaves.
var finalStates = map[string]bool{
	"BOOT_FAIL": true, "CANCELLED": true, "COMPLETED": true, "DEADLINE": true, "FAILED": true,
	"NODE_FAIL": true, "OUT_OF_MEMORY": true, "PREEMPTED": true, "TIMEOUT": true, "SPECIAL_EXIT": true,
	"REVOKED": true,
}

// pendingStates are the states of a job that has not started (again).
var pendingStates = map[string]bool{
	"PENDING": true, "REQUEUED": true, "REQUEUE_HOLD": true, "REQUEUE_FED": true, "RESV_DEL_HOLD": true,
}

// Finished reports whether the job ended (in any way). A job that is
// COMPLETING has not: its processes are still being ended.
func (j JobInfo) Finished() bool { return finalStates[j.State] }

// Pending reports whether the job waits to start.
func (j JobInfo) Pending() bool { return pendingStates[j.State] }

// Describe says how the job ended, for a run's reason:
// "slurm job 12 CANCELLED by uid 0 while pending (BeginTime)".
func (j JobInfo) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "slurm job %s %s", j.ID, j.State)
	if j.By != "" {
		fmt.Fprintf(&b, " by uid %s", j.By)
	}
	if j.State == "CANCELLED" && j.Node == "" {
		b.WriteString(" while pending")
	}
	if j.ExitCode != "" && j.ExitCode != "0:0" && j.State != "CANCELLED" {
		fmt.Fprintf(&b, ", exit code %s", j.ExitCode)
	}
	if j.Reason != "" {
		fmt.Fprintf(&b, " (%s)", j.Reason)
	}
	return b.String()
}

// squeueFormat is parsed by parseSqueue: id, state, reason, nodes,
// partition, end time.
const squeueFormat = "%i|%T|%r|%N|%P|%e"

// sacctFields is parsed by parseSacct.
const sacctFields = "JobID,State,NodeList,Partition,ExitCode,End"

// Jobs returns what the scheduler knows of each job id ("123" or "123_4"):
// first from squeue (jobs in slurmctld's memory, finished ones until
// MinJobAge), then from sacct for the rest (the accounting database, or the
// job completion log when the cluster keeps no accounting). Ids no source
// knows are absent from the map. An error means the scheduler could not be
// asked (sbatch missing wraps core.ErrUnsupported; a controller that does
// not answer is a *CommandError).
func (c *Client) Jobs(ctx context.Context, ids []string) (map[string]JobInfo, error) {
	out := map[string]JobInfo{}
	if len(ids) == 0 {
		return out, nil
	}
	stdout, err := c.run(ctx, true, "squeue", "--noheader", "--array", "--states=all", "--jobs="+strings.Join(ids, ","), "--format="+squeueFormat)
	if err != nil && !invalidJobID(err) {
		return nil, fmt.Errorf("ask squeue: %w", err)
	}
	if err == nil {
		for _, j := range parseSqueue(string(stdout)) {
			out[j.ID] = j
		}
	}
	// sacct for the rest, and for jobs squeue shows COMPLETING: how they
	// ended (CANCELLED, TIMEOUT, ...) is known to accounting before
	// slurmctld's job record says it.
	var rest []string
	for _, id := range ids {
		if j, ok := out[id]; !ok || j.State == "COMPLETING" {
			rest = append(rest, id)
		}
	}
	if len(rest) == 0 {
		return out, nil
	}
	found, err := c.sacct(ctx, rest)
	if err != nil {
		return nil, err
	}
	for _, j := range found {
		if !slices.Contains(rest, j.ID) {
			continue
		}
		if q, ok := out[j.ID]; ok {
			if !j.Finished() {
				continue
			}
			// squeue's node, partition and reason are the fresher.
			j.Node, j.Partition, j.Reason = cmp.Or(q.Node, j.Node), cmp.Or(q.Partition, j.Partition), cmp.Or(q.Reason, j.Reason)
		}
		out[j.ID] = j
	}
	return out, nil
}

// sacct asks the accounting database, or the job completion log when
// accounting is disabled. The completion log knows array tasks only by
// their own job ids, so those are not asked there.
func (c *Client) sacct(ctx context.Context, ids []string) ([]JobInfo, error) {
	args := []string{"--noheader", "--parsable2", "--allocations", "--jobs=" + strings.Join(ids, ","), "--format=" + sacctFields}
	stdout, err := c.run(ctx, true, "sacct", args...)
	if err == nil {
		return parseSacct(string(stdout), "sacct"), nil
	}
	var ce *CommandError
	if !errors.As(err, &ce) || !strings.Contains(strings.ToLower(ce.Stderr), "accounting storage is disabled") {
		return nil, fmt.Errorf("ask sacct: %w", err)
	}
	var plain []string
	for _, id := range ids {
		if !strings.Contains(id, "_") {
			plain = append(plain, id)
		}
	}
	if len(plain) == 0 {
		return nil, nil
	}
	args = []string{"--completion", "--noheader", "--parsable2", "--jobs=" + strings.Join(plain, ","), "--format=" + sacctFields}
	stdout, err = c.run(ctx, true, "sacct", args...)
	if err != nil {
		// No completion log either (JobCompType=jobcomp/none): only squeue
		// can tell, and it did not know these jobs.
		if errors.As(err, &ce) && strings.Contains(strings.ToLower(ce.Stderr), "jobcomp") {
			return nil, nil
		}
		return nil, fmt.Errorf("ask sacct --completion: %w", err)
	}
	return parseSacct(string(stdout), "sacct --completion"), nil
}

// invalidJobID recognises squeue's answer when none of the ids is in
// slurmctld's memory any more.
func invalidJobID(err error) bool {
	var ce *CommandError
	return errors.As(err, &ce) && strings.Contains(ce.Stderr, "Invalid job id")
}

func parseSqueue(text string) []JobInfo {
	var out []JobInfo
	for _, line := range strings.Split(text, "\n") {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) != 6 || f[0] == "" {
			continue
		}
		out = append(out, JobInfo{
			ID: f[0], State: f[1], Reason: reason(f[2]), Node: none(f[3]), Partition: none(f[4]),
			End: slurmTime(f[5]), Source: "squeue",
		})
	}
	return out
}

func parseSacct(text, source string) []JobInfo {
	var out []JobInfo
	for _, line := range strings.Split(text, "\n") {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) != 6 || f[0] == "" {
			continue
		}
		// "CANCELLED by 0"
		state := strings.Fields(f[1])
		if len(state) == 0 {
			continue
		}
		j := JobInfo{ID: f[0], State: state[0], Node: none(f[2]), Partition: none(f[3]), ExitCode: f[4], End: slurmTime(f[5]), Source: source}
		if len(state) == 3 && state[1] == "by" {
			j.By = state[2]
		}
		out = append(out, j)
	}
	return out
}

// none maps Slurm's spellings of nothing to "".
func none(s string) string {
	switch s {
	case "", "(null)", "None", "None assigned", "N/A", "Unknown":
		return ""
	}
	return s
}

// reason drops the reasons that say nothing.
func reason(s string) string {
	if s == "None" {
		return ""
	}
	return none(s)
}

// slurmTime reads Slurm's local "2006-01-02T15:04:05"; zero when unknown.
func slurmTime(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02T15:04:05", s, time.Local)
	if err != nil {
		return time.Time{}
	}
	return t
}
