// Package recordtest makes synthetic Slurm runs and the record files their
// jobs would write, for the tests of plugins/slurm and the ingest benchmark:
// ingesting 1,000 records cannot wait for 1,000 containers. It is not used by
// runprov itself.
package recordtest

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/sqlite/sqlitetest"
	"github.com/runprov/runprov/plugins/slurm"
)

// Queued is synthetic run i as `runprov run --executor slurm` creates it:
// queued, with job jobID (task i of it when array is true), no steps or
// manifests yet.
func Queued(i int, jobID string, array bool) core.Run {
	r := sqlitetest.SyntheticRun(i, 0)
	r.Executor = "slurm"
	r.Slurm = &core.SlurmJob{JobID: jobID}
	if array {
		task := i
		r.Slurm.ArrayTask = &task
	}
	r.Status = core.RunQueued
	r.ExitCode, r.Reason = nil, ""
	r.Started, r.Ended = time.Time{}, time.Time{}
	r.Steps, r.Inputs, r.Outputs = nil, nil, nil
	r.Hostname = ""
	return r
}

// Finished is the record the job of queued run q writes on node: succeeded,
// with a step, an input and outputs files, and the node's snapshots.
func Finished(q core.Run, node string, outputs int) *slurm.Record {
	full := sqlitetest.SyntheticRun(0, outputs)
	r := q
	zero := 0
	r.Status, r.ExitCode = core.RunSucceeded, &zero
	r.Hostname = node
	r.Slurm = &core.SlurmJob{JobID: q.Slurm.JobID, ArrayTask: q.Slurm.ArrayTask, Node: node, Partition: "debug"}
	r.Started = q.Created.Add(2 * time.Second)
	r.Ended = r.Started.Add(time.Second)
	r.Steps = []core.RunStep{{Index: 0, Argv: r.Argv, ExitCode: 0, Start: r.Started, End: r.Ended}}
	r.Inputs = full.Inputs
	r.Outputs = full.Outputs
	env := core.Environment{UID: 0, GID: 0, User: "root", Groups: []int{0}, Hostname: node}
	kernel := &core.SystemKernel{KernelRelease: "6.1.0-test", KernelVersion: "#1 SMP", OSRelease: "Debian GNU/Linux 12 (bookworm)",
		Arch: "x86_64", CPUModel: "synthetic", CPUCount: 2, MemTotalBytes: 1 << 34, Runtime: core.RuntimeInfo{Name: "runc", Version: "1.1.5"},
		Sysctls: map[string]string{"vm.swappiness": "60"}}
	return &slurm.Record{Version: slurm.RecordVersion, Run: r, Environment: &env, SystemKernel: kernel}
}

// RunStore is what Setup needs of the store.
type RunStore interface {
	CreateRun(ctx context.Context, r *core.Run) error
}

// Setup creates n queued runs of one array job in st and returns them;
// their run directories are made under layout.
func Setup(ctx context.Context, st RunStore, layout core.Layout, n int, jobID string) ([]core.Run, error) {
	runs := make([]core.Run, n)
	for i := range runs {
		runs[i] = Queued(i, jobID, true)
		if err := st.CreateRun(ctx, &runs[i]); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(layout.Run(runs[i].ID), 0o755); err != nil {
			return nil, fmt.Errorf("run dir: %w", err)
		}
	}
	return runs, nil
}
