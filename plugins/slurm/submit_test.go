package slurm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/producer"
)

// fakePreparer prepares runs in a temporary directory, failing at task fail.
type fakePreparer struct {
	dir  string
	fail int
}

func (f *fakePreparer) PrepareQueued(_ context.Context, _ producer.Options, task int) (*producer.Prepared, error) {
	if task == f.fail {
		return nil, core.ErrNotApproved
	}
	id := producer.NewRunID()
	dir := filepath.Join(f.dir, id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	r := &core.Run{ID: id, Status: core.RunRunning}
	if task >= 0 {
		r.Slurm = &core.SlurmJob{ArrayTask: &task}
	}
	return &producer.Prepared{Run: r, Dir: dir}, nil
}

type fakeSbatch struct {
	err    error
	script string
}

func (f *fakeSbatch) Submit(_ context.Context, script string, _ ...string) (string, error) {
	f.script = script
	return "77", f.err
}

type fakeRuns struct {
	finished map[string]core.Run
	queued   map[string]core.RunUpdate
}

func (f *fakeRuns) FinishRun(_ context.Context, r *core.Run) error {
	f.finished[r.ID] = *r
	return nil
}

func (f *fakeRuns) UpdateUnfinishedRuns(_ context.Context, us []core.RunUpdate) (int, error) {
	for _, u := range us {
		f.queued[u.ID] = u
	}
	return len(us), nil
}

func newSubmission(t *testing.T, fail int, sbatchErr error) (*Submission, *fakeRuns, *fakeSbatch) {
	runs := &fakeRuns{finished: map[string]core.Run{}, queued: map[string]core.RunUpdate{}}
	sb := &fakeSbatch{err: sbatchErr}
	return &Submission{Producer: &fakePreparer{dir: t.TempDir(), fail: fail}, Runs: runs, Scheduler: sb, Store: "/store"}, runs, sb
}

// TestSubmitArray: every task is prepared, one script names them all, and
// each run is queued with the job id and its task.
func TestSubmitArray(t *testing.T) {
	s, runs, sb := newSubmission(t, -2, nil)
	job, preps, err := s.Submit(context.Background(), producer.Options{}, SubmitOptions{Array: 3, Binary: "/bin/runprov", SbatchArgs: []string{"--qos=x"}})
	if err != nil || job != "77" || len(preps) != 3 {
		t.Fatalf("submit: job %q, %d runs, %v", job, len(preps), err)
	}
	script, err := os.ReadFile(sb.script)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--qos=x", "/bin/runprov", preps[2].Run.ID, "--array"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("batch script lacks %q:\n%s", want, script)
		}
	}
	for i, p := range preps {
		u := runs.queued[p.Run.ID]
		if u.Status != core.RunQueued || u.JobID != "77" || u.ArrayTask == nil || *u.ArrayTask != i {
			t.Errorf("task %d: update %+v", i, u)
		}
	}
	if len(runs.finished) != 0 {
		t.Errorf("runs finished: %v", runs.finished)
	}
}

// TestSubmitArrayRange: tasks A-B are numbered from A, in the script's
// --array and case labels and in each run's task.
func TestSubmitArrayRange(t *testing.T) {
	s, runs, sb := newSubmission(t, -2, nil)
	_, preps, err := s.Submit(context.Background(), producer.Options{}, SubmitOptions{Array: 3, ArrayFirst: 5, Binary: "/bin/runprov"})
	if err != nil || len(preps) != 3 {
		t.Fatalf("submit: %d runs, %v", len(preps), err)
	}
	script, err := os.ReadFile(sb.script)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#SBATCH --array=5-7\n", "5) run=" + preps[0].Run.ID, "7) run=" + preps[2].Run.ID} {
		if !strings.Contains(string(script), want) {
			t.Errorf("batch script lacks %q:\n%s", want, script)
		}
	}
	if strings.Contains(string(script), "0) run=") {
		t.Errorf("batch script has a task 0:\n%s", script)
	}
	for i, p := range preps {
		if u := runs.queued[p.Run.ID]; u.ArrayTask == nil || *u.ArrayTask != 5+i {
			t.Errorf("run %d: update %+v, want task %d", i, u, 5+i)
		}
	}
}

// TestSubmitAbortsOnFailure: when a task cannot be prepared, or sbatch
// refuses the job, the runs prepared so far end aborted and none is queued.
func TestSubmitAbortsOnFailure(t *testing.T) {
	s, runs, _ := newSubmission(t, 2, nil)
	_, _, err := s.Submit(context.Background(), producer.Options{}, SubmitOptions{Array: 3})
	var pe *PreparingError
	if !errors.As(err, &pe) || pe.Task != 2 || !errors.Is(err, core.ErrNotApproved) {
		t.Fatalf("want a PreparingError of task 2: %v", err)
	}
	if len(runs.finished) != 2 || len(runs.queued) != 0 {
		t.Fatalf("finished %d, queued %d; want 2 aborted, none queued", len(runs.finished), len(runs.queued))
	}
	for _, r := range runs.finished {
		if r.Status != core.RunAborted || !strings.Contains(r.Reason, "array task 2") {
			t.Errorf("run %s: %s %q", r.ID, r.Status, r.Reason)
		}
	}

	s, runs, _ = newSubmission(t, -2, errors.New("sbatch: error: invalid partition"))
	if _, _, err := s.Submit(context.Background(), producer.Options{}, SubmitOptions{}); err == nil {
		t.Fatal("sbatch failed, Submit did not")
	}
	if len(runs.finished) != 1 || len(runs.queued) != 0 {
		t.Fatalf("finished %d, queued %d; want 1 aborted", len(runs.finished), len(runs.queued))
	}
	for _, r := range runs.finished {
		if !strings.Contains(r.Reason, "invalid partition") {
			t.Errorf("reason %q", r.Reason)
		}
	}
}

// TestJobFromEnv reads the job a batch step runs in from slurmstepd's variables.
func TestJobFromEnv(t *testing.T) {
	for _, k := range []string{"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURMD_NODENAME", "SLURM_JOB_PARTITION"} {
		t.Setenv(k, "")
	}
	if j := JobFromEnv(); j != nil {
		t.Fatalf("outside Slurm: job %+v", j)
	}
	t.Setenv("SLURM_JOB_ID", "24")
	t.Setenv("SLURM_ARRAY_JOB_ID", "21")
	t.Setenv("SLURM_ARRAY_TASK_ID", "3")
	t.Setenv("SLURMD_NODENAME", "n1")
	t.Setenv("SLURM_JOB_PARTITION", "debug")
	if j := JobFromEnv(); j == nil || j.JobID != "21" || j.ArrayTask == nil || *j.ArrayTask != 3 || j.Node != "n1" || j.Partition != "debug" {
		t.Fatalf("array task 21_3: %+v", j)
	}
}
