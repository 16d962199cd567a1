package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
	slurmdrv "github.com/runprov/runprov/drivers/slurm"
	"github.com/runprov/runprov/drivers/slurm/slurmtest"
)

// The Slurm executor against the real cluster of this machine
// (testdata/slurm/slurm-up.sh): the batch jobs run this test binary as
// runprov, on the same store.

// requireSlurm makes a test unavailable without root, runc and a Slurm
// cluster (it fails in CI), and points the batch scripts at this test
// binary, which is runprov in TestSlurmJobHelper.
func requireSlurm(t *testing.T) {
	t.Helper()
	requireRunc(t)
	slurmtest.Require(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The batch script calls it as: BIN --store STORE exec-prepared RUN.
	wrapper := filepath.Join(t.TempDir(), "runprov")
	script := "#!/bin/sh\nexport RUNPROV_SLURM_HELPER_ARGS=\"[\\\"$1\\\", \\\"$2\\\", \\\"$3\\\", \\\"$4\\\"]\"\n" +
		"exec " + self + " -test.run='^TestSlurmJobHelper$'\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(slurmBinaryEnv, wrapper)
}

// TestSlurmJobHelper is runprov's main in the batch jobs of these tests,
// when RUNPROV_SLURM_HELPER_ARGS holds the arguments (a JSON list); run
// normally, it does nothing.
func TestSlurmJobHelper(t *testing.T) {
	argsJSON := os.Getenv("RUNPROV_SLURM_HELPER_ARGS")
	if argsJSON == "" {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(argsJSON), &args); err != nil {
		panic(err)
	}
	// As main does.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const slurmRunfile = `FROM IMAGE
ARG WHO=world
ENV WHO=${WHO}
LIMIT cpus=1 memory=64m timeout=2m
CMD ["/bin/sh", "-c", "echo hello $WHO > /safe_outputs/greeting.txt; echo done"]
`

// slurmRun runs `runprov --json run COMMIT --executor slurm --no-input
// args...` (the Runfiles here have the TRE layout and no input) and decodes
// what it prints into v.
func slurmRun(t *testing.T, rs *runStore, v any, args ...string) (string, int) {
	t.Helper()
	out, errs, code := cli(t, rs.dir, append([]string{"--json", "run", rs.commit, "--executor", "slurm", "--no-input"}, args...)...)
	if v != nil && code == 0 {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("run printed %q: %v\n%s", out, err, errs)
		}
	}
	return errs, code
}

func showJSON(t *testing.T, store, id string) map[string]any {
	t.Helper()
	out, _ := mustCLI(t, 0, store, "--json", "show", id)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// A run through Slurm records its job, node and hashed outputs, and `show`
// gives what a local run of the same commit gives, but for what differs
// between any two runs (id, times, per-run paths) and the executor fields.
func TestSlurmRunMatchesLocalRun(t *testing.T) {
	requireSlurm(t)
	rs := newRunStore(t, slurmRunfile)
	var r core.Run
	start := time.Now()
	errs, code := slurmRun(t, rs, &r, "--arg", "WHO=slurm", "--wait")
	t.Logf("run --executor slurm --wait took %v: created %v started %v ended %v", time.Since(start), r.Created.Sub(start), r.Started.Sub(start), r.Ended.Sub(start))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	host, _ := os.Hostname()
	node := strings.Split(host, ".")[0]
	if r.Status != core.RunSucceeded || r.Executor != "slurm" || r.Slurm == nil || r.Slurm.JobID == "" ||
		r.Slurm.Node != node || r.Slurm.Partition == "" || r.Slurm.ArrayTask != nil || r.Hostname != host {
		t.Fatalf("slurm run: %s %q executor %s %+v host %s\n%s", r.Status, r.Reason, r.Executor, r.Slurm, r.Hostname, errs)
	}
	if len(r.Outputs) != 1 || r.Outputs[0].SHA256 != sha256Hex("hello slurm\n") {
		t.Fatalf("outputs %+v, want greeting.txt hashed", r.Outputs)
	}
	if !strings.Contains(errs, "queued as slurm job "+r.Slurm.JobID) {
		t.Errorf("stderr does not name the job:\n%s", errs)
	}
	if logs, _ := os.ReadFile(filepath.Join(rs.dir, "runs", r.ID, "stdout.log")); string(logs) != "done\n" {
		t.Errorf("stdout.log = %q", logs)
	}
	local, errs, code := rs.run(t, "--no-input", "--arg", "WHO=slurm")
	if code != 0 {
		t.Fatalf("local run: exit %d\n%s", code, errs)
	}
	remote, here := showJSON(t, rs.dir, r.ID), showJSON(t, rs.dir, local.ID)
	for _, m := range []map[string]any{remote, here} {
		for _, k := range []string{"id", "created", "started", "ended", "executor", "slurm"} {
			delete(m, k)
		}
		// slurmd starts jobs with the user's supplementary groups
		// (initgroups); this test process may have none.
		if e, ok := m["environment"].(map[string]any); ok {
			delete(e, "groups")
			delete(m, "environment_sha256")
		}
		// Paths in the run's directory name the run.
		b, _ := json.Marshal(m)
		var clean map[string]any
		json.Unmarshal([]byte(strings.ReplaceAll(strings.ReplaceAll(string(b), r.ID, "RUN"), local.ID, "RUN")), &clean)
		for k := range m {
			delete(m, k)
		}
		for k, v := range clean {
			m[k] = v
		}
		for _, s := range m["steps"].([]any) {
			delete(s.(map[string]any), "start")
			delete(s.(map[string]any), "end")
		}
	}
	for _, k := range jsonDiff("", remote, here) {
		t.Errorf("show of the slurm run differs from the local run's at %s", k)
	}
	if remote["system_kernel"] == nil || remote["environment"] == nil {
		t.Error("the slurm run has no system or environment snapshot")
	}
}

// Two hundred array tasks on two cores, finishing two at a time while
// --wait ingests: one sbatch, one job, and a record stored for every task,
// each with its task id and its own outputs; fsck holds. The nodes run the
// built runprov (as TestSlurmRealBinary): two hundred starts of this test
// binary under the race detector would take minutes.
func TestSlurmArray(t *testing.T) {
	requireSlurm(t)
	t.Setenv(slurmBinaryEnv, runprovBinary(t))
	rs := newRunStore(t, `FROM IMAGE
ARG SLURM_ARRAY_TASK_ID
ENV TASK=${SLURM_ARRAY_TASK_ID}
LIMIT cpus=1
CMD ["/bin/sh", "-c", "echo task $TASK > /safe_outputs/task.txt"]
`)
	calls := countSbatch(t)
	// sbatch's range form, tasks 1 to 200.
	const first, n = 1, 200
	var runs []core.Run
	errs, code := slurmRun(t, rs, &runs, "--array", fmt.Sprintf("%d-%d", first, first+n-1), "--wait")
	if code != 0 || len(runs) != n {
		t.Fatalf("exit %d, %d runs\n%s", code, len(runs), errs)
	}
	if b, _ := os.ReadFile(calls); strings.Count(string(b), "\n") != 1 {
		t.Errorf("sbatch calls, want one:\n%s", b)
	}
	seen, tasks := map[string]bool{}, map[int]bool{}
	for i, r := range runs {
		want := fmt.Sprint(first + i)
		if r.Status != core.RunSucceeded || r.Args["SLURM_ARRAY_TASK_ID"] != want || r.Slurm == nil || r.Slurm.ArrayTask == nil ||
			*r.Slurm.ArrayTask != first+i || r.Slurm.JobID != runs[0].Slurm.JobID || r.Slurm.Node == "" {
			t.Errorf("task %d: %s %q args %v slurm %+v", i, r.Status, r.Reason, r.Args, r.Slurm)
			continue
		}
		if len(r.Outputs) != 1 || r.Outputs[0].SHA256 != sha256Hex("task "+want+"\n") {
			t.Errorf("task %d outputs %+v", i, r.Outputs)
		}
		seen[r.ID], tasks[*r.Slurm.ArrayTask] = true, true
	}
	if len(seen) != n || len(tasks) != n {
		t.Errorf("%d distinct run ids and %d distinct tasks, want %d", len(seen), len(tasks), n)
	}
	out, _ := mustCLI(t, 0, rs.dir, "query", "--csv", "SELECT count(DISTINCT slurm_array_task) FROM runs WHERE executor = 'slurm' AND status = 'succeeded' AND slurm_job_id = '"+runs[0].Slurm.JobID+"'")
	if !strings.HasSuffix(strings.TrimSpace(out), fmt.Sprint(n)) {
		t.Errorf("stored succeeded tasks: %s", out)
	}
	mustCLI(t, 0, rs.dir, "fsck")
}

// countSbatch puts an sbatch in front of $PATH that runs the real one and
// appends a line to the file it returns for each call.
func countSbatch(t *testing.T) string {
	t.Helper()
	real, err := exec.LookPath("sbatch")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	script := "#!/bin/sh\necho \"$*\" >> " + slurmdrv.Quote(calls) + "\nexec " + slurmdrv.Quote(real) + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "sbatch"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return calls
}

// waitStatus polls `runprov show` (each call refreshes Slurm runs) until
// the run's status satisfies ok.
func waitStatus(t *testing.T, store, id string, timeout time.Duration, ok func(core.RunStatus) bool) core.Run {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var r core.Run
	for {
		out, _ := mustCLI(t, 0, store, "--json", "show", id)
		r = core.Run{}
		json.Unmarshal([]byte(out), &r)
		if ok(r.Status) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s still %s after %v", id, r.Status, timeout)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// scancel of a pending and of a running job: the run ends aborted with the
// scheduler's reason.
func TestSlurmCancel(t *testing.T) {
	requireSlurm(t)
	rs := newRunStore(t, `FROM IMAGE
CMD ["/bin/sleep", "300"]
`)
	var pending, running core.Run
	if errs, code := slurmRun(t, rs, &pending, "--sbatch-arg=--begin=now+1hour"); code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	if errs, code := slurmRun(t, rs, &running); code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	for _, r := range []core.Run{pending, running} {
		if r.Status != core.RunQueued || r.Slurm == nil || r.Slurm.JobID == "" {
			t.Fatalf("submitted run: %s %+v", r.Status, r.Slurm)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(rs.dir, "runs", pending.ID, "slurm.sh")); !strings.Contains(string(b), "sbatch --parsable --begin=now+1hour slurm.sh") {
		t.Errorf("the run's batch script does not keep the sbatch arguments:\n%s", b)
	}
	waitStatus(t, rs.dir, running.ID, time.Minute, func(s core.RunStatus) bool { return s == core.RunRunning })
	// runs lists them as the scheduler has them.
	out, _ := mustCLI(t, 0, rs.dir, "--json", "runs")
	var listed []core.Run
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("runs --json: %v\n%s", err, out)
	}
	status := map[string]core.RunStatus{}
	for _, r := range listed {
		status[r.ID] = r.Status
	}
	if status[pending.ID] != core.RunQueued || status[running.ID] != core.RunRunning {
		t.Errorf("runs lists the pending job's run %s and the running one's %s", status[pending.ID], status[running.ID])
	}
	// The container really runs before it is cancelled.
	deadline := time.Now().Add(time.Minute)
	for !hasContainer(t, rs.dir) {
		if time.Now().After(deadline) {
			t.Fatal("the job's container never started")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, r := range []core.Run{pending, running} {
		if out, err := exec.Command("scancel", r.Slurm.JobID).CombinedOutput(); err != nil {
			t.Fatalf("scancel: %v %s", err, out)
		}
	}
	p := waitStatus(t, rs.dir, pending.ID, time.Minute, core.RunStatus.Finished)
	if p.Status != core.RunAborted || !strings.Contains(p.Reason, "slurm job "+pending.Slurm.JobID+" CANCELLED") || !strings.Contains(p.Reason, "while pending") {
		t.Errorf("cancelled pending run: %s %q", p.Status, p.Reason)
	}
	r := waitStatus(t, rs.dir, running.ID, 2*time.Minute, core.RunStatus.Finished)
	t.Logf("pending: %q; running: %q", p.Reason, r.Reason)
	if r.Status != core.RunAborted || !strings.Contains(r.Reason, "slurm job "+running.Slurm.JobID+" CANCELLED") || r.Slurm.Node == "" {
		t.Errorf("cancelled running run: %s %q %+v", r.Status, r.Reason, r.Slurm)
	}
}

// A job that ends without writing a record (here: the node has no runprov
// at that path) is marked aborted with what the scheduler says, once the
// grace period for late records has passed.
func TestSlurmJobDiedWithoutRecord(t *testing.T) {
	requireSlurm(t)
	rs := newRunStore(t, slurmRunfile)
	t.Setenv(slurmBinaryEnv, "/nonexistent/runprov")
	t.Setenv(slurmGraceEnv, "1s")
	var r core.Run
	errs, code := slurmRun(t, rs, &r, "--wait")
	if code != exitRunprov || r.ID != "" {
		t.Fatalf("exit %d, want %d\n%s", code, exitRunprov, errs)
	}
	out, _ := mustCLI(t, 0, rs.dir, "--json", "runs")
	var listed []core.Run
	json.Unmarshal([]byte(out), &listed)
	if len(listed) != 1 {
		t.Fatalf("runs: %s", out)
	}
	got := listed[0]
	if got.Status != core.RunAborted || !strings.Contains(got.Reason, "FAILED") || !strings.Contains(got.Reason, "wrote no record") ||
		!strings.Contains(got.Reason, "slurm.out") || got.Slurm == nil || got.Slurm.Node == "" || got.Ended.IsZero() {
		t.Errorf("run of a job that died: %s %q %+v", got.Status, got.Reason, got.Slurm)
	}
	if b, _ := os.ReadFile(filepath.Join(rs.dir, "runs", got.ID, "slurm.out")); !strings.Contains(string(b), "/nonexistent/runprov") {
		t.Errorf("slurm.out does not say what failed: %q", b)
	}
	t.Logf("reason: %q", got.Reason)
}

func hasContainer(t *testing.T, store string) bool {
	out, err := exec.Command("runc", "--root", filepath.Join(store, "runtime", "runc"), "list", "-q").Output()
	return err == nil && strings.TrimSpace(string(out)) != ""
}

// sbatch missing or the controller down: a clear error, exit 125, and no
// queued or running row.
func TestSlurmSubmitFailures(t *testing.T) {
	requireSlurm(t)
	rs := newRunStore(t, slurmRunfile)
	unfinished := func() string {
		out, _ := mustCLI(t, 0, rs.dir, "query", "--csv", "SELECT count(*) FROM runs WHERE status IN ('queued', 'running')")
		return strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	}

	t.Run("sbatch missing", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		errs, code := slurmRun(t, rs, nil)
		if code != exitRunprov || !strings.Contains(errs, "sbatch is not on PATH") {
			t.Errorf("exit %d\n%s", code, errs)
		}
		if runCount(t, rs.dir) != 0 {
			t.Error("a run was recorded although nothing could be submitted")
		}
	})
	t.Run("controller down", func(t *testing.T) {
		conf := slurmtest.DownConf(t)
		t.Setenv("SLURM_CONF", strings.TrimPrefix(conf, "SLURM_CONF="))
		errs, code := slurmRun(t, rs, nil)
		if code != exitRunprov || !strings.Contains(errs, "Unable to contact slurm controller") || !strings.Contains(errs, "scontrol ping") {
			t.Errorf("exit %d\n%s", code, errs)
		}
		if n := unfinished(); n != "0" {
			t.Errorf("%s queued or running rows left behind", n)
		}
		out, _ := mustCLI(t, 0, rs.dir, "query", "--csv", "SELECT status, reason FROM runs")
		if !strings.Contains(out, "aborted") || !strings.Contains(out, "sbatch did not take the job") {
			t.Errorf("the prepared run is not marked aborted with why:\n%s", out)
		}
	})
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{{"--array", "3"}, {"--executor", "pbs"}, {"--executor", "slurm", "--array", "2", "--outputs", t.TempDir()}} {
			_, errs, code := cli(t, rs.dir, append([]string{"run", rs.commit}, args...)...)
			if code != exitUsage {
				t.Errorf("run %v: exit %d, want %d\n%s", args, code, exitUsage, errs)
			}
		}
	})
}

// jsonDiff lists the paths at which two decoded JSON values differ, with
// both values when they are not objects.
func jsonDiff(path string, a, b any) []string {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		var out []string
		for k := range am {
			out = append(out, jsonDiff(path+"."+k, am[k], bm[k])...)
		}
		for k := range bm {
			if _, ok := am[k]; !ok {
				out = append(out, jsonDiff(path+"."+k, nil, bm[k])...)
			}
		}
		return out
	}
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	if string(x) != string(y) {
		return []string{fmt.Sprintf("%s: %s vs %s", path, x, y)}
	}
	return nil
}

// run --executor slurm --wait passes the container's exit status through,
// as a local run does: a command that exits 3 makes runprov exit 3, and the
// run is recorded failed with exit code 3 and its outputs.
func TestSlurmWaitExitStatus(t *testing.T) {
	requireSlurm(t)
	rs := newRunStore(t, `FROM IMAGE
LIMIT cpus=1 memory=64m timeout=2m
CMD ["/bin/sh", "-c", "echo partial > /safe_outputs/partial.txt; exit 3"]
`)
	out, errs, code := cli(t, rs.dir, "--json", "run", rs.commit, "--executor", "slurm", "--wait", "--no-input")
	if code != 3 {
		t.Fatalf("run --executor slurm --wait of a command that exits 3: exit %d, want 3\n%s\n%s", code, out, errs)
	}
	newest := newestRun(t, rs.dir)
	r := showJSON(t, rs.dir, newest.ID)
	slurm, _ := r["slurm"].(map[string]any)
	if r["executor"] != "slurm" || slurm == nil || slurm["job_id"] == "" || r["status"] != string(core.RunFailed) || r["exit_code"] != float64(3) {
		t.Fatalf("the slurm run that exited 3: executor %v slurm %v status %v exit %v reason %v", r["executor"], slurm, r["status"], r["exit_code"], r["reason"])
	}
	var printed core.Run
	if err := json.Unmarshal([]byte(out), &printed); err != nil || printed.ID != newest.ID || printed.ExitCode == nil || *printed.ExitCode != 3 {
		t.Errorf("run --json printed %q (%v), want the failed run's record", out, err)
	}
	outputs, _ := r["outputs"].([]any)
	if len(outputs) != 1 || outputs[0].(map[string]any)["sha256"] != sha256Hex("partial\n") {
		t.Errorf("outputs of the failed slurm run: %v", r["outputs"])
	}
	mustCLI(t, 0, rs.dir, "fsck")
}

// TestSlurmRealBinary submits with the runprov binary itself, as a user
// does: without RUNPROV_SLURM_BINARY the batch script runs the binary that
// submitted it (os.Executable), on the node, against the same store.
func TestSlurmRealBinary(t *testing.T) {
	requireRunc(t)
	slurmtest.Require(t)
	t.Setenv(slurmBinaryEnv, "")
	bin := runprovBinary(t)
	rs := newRunStore(t, slurmRunfile)
	cmd := exec.Command(bin, "--store", rs.dir, "--json", "run", rs.commit, "--executor", "slurm", "--wait", "--no-input", "--arg", "WHO=node")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s run --executor slurm --wait: %v\n%s\n%s", bin, err, stdout.String(), stderr.String())
	}
	var r core.Run
	if err := json.Unmarshal([]byte(stdout.String()), &r); err != nil {
		t.Fatalf("run printed %q: %v", stdout.String(), err)
	}
	if r.Status != core.RunSucceeded || r.Executor != "slurm" || r.Slurm == nil || r.Slurm.JobID == "" || r.Slurm.Node == "" {
		t.Fatalf("run through the real binary: status %s %q, executor %s, slurm %+v", r.Status, r.Reason, r.Executor, r.Slurm)
	}
	script, err := os.ReadFile(filepath.Join(rs.dir, "runs", r.ID, "slurm.sh"))
	if err != nil || !strings.Contains(string(script), bin) {
		t.Errorf("the batch script does not run %s: %v\n%s", bin, err, script)
	}
	if len(r.Outputs) != 1 || r.Outputs[0].SHA256 != sha256Hex("hello node\n") {
		t.Errorf("outputs: %+v, want greeting.txt with \"hello node\"", r.Outputs)
	}
	mustCLI(t, 0, rs.dir, "fsck")
}

// TestParseArray: --array takes a number of tasks or sbatch's A-B range;
// anything else is refused with a usage error naming both forms.
func TestParseArray(t *testing.T) {
	for _, c := range []struct {
		in           string
		first, tasks int
	}{{"", 0, 0}, {"1", 0, 1}, {"200", 0, 200}, {"1-200", 1, 200}, {"0-0", 0, 1}, {"7-9", 7, 3}} {
		first, tasks, err := parseArray(c.in)
		if err != nil || first != c.first || tasks != c.tasks {
			t.Errorf("parseArray(%q) = %d, %d, %v; want %d, %d", c.in, first, tasks, err, c.first, c.tasks)
		}
	}
	for _, in := range []string{"0", "-1", "5-3", "1-", "-", "1,3,5", "0-10:2", "1-10%2", "x"} {
		if _, _, err := parseArray(in); exitCode(err) != exitUsage || !strings.Contains(fmt.Sprint(err), "A-B") {
			t.Errorf("parseArray(%q): %v, want a usage error", in, err)
		}
	}
}
