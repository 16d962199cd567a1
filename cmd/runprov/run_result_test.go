package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRunResult: run --json ends with one object naming the run, its
// status, exit code and outputs directory; a human run's last line names
// the outputs directory.
func TestRunResult(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, "FROM IMAGE\nOUTPUT /out\nCMD [\"/bin/sh\", \"-c\", \"echo hi >/out/a; exit 3\"]\n")
	out, errs, code := cli(t, rs.dir, "--json", "run", rs.commit)
	if code != 3 {
		t.Fatalf("run: exit %d, want 3\n%s", code, errs)
	}
	var res struct {
		ID         string `json:"id"`
		Status     string `json:"status"`
		ExitCode   *int   `json:"exit_code"`
		OutputsDir string `json:"outputs_dir"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&res); err != nil || dec.More() {
		t.Fatalf("run --json stdout is not one JSON object (%v):\n%s", err, out)
	}
	// The four lead the object.
	keys := regexp.MustCompile(`(?m)^  "([a-z_]+)":`).FindAllStringSubmatch(out, 4)
	if len(keys) != 4 || keys[0][1] != "id" || keys[1][1] != "status" || keys[2][1] != "exit_code" || keys[3][1] != "outputs_dir" {
		t.Errorf("run --json does not begin with id, status, exit_code, outputs_dir:\n%s", out)
	}
	if strings.Count(out, `"id":`) != 1 {
		t.Errorf("run --json repeats the id:\n%s", out)
	}
	want := filepath.Join(rs.dir, "runs", res.ID, "outputs")
	if len(res.ID) != 32 || res.Status != "failed" || res.ExitCode == nil || *res.ExitCode != 3 || res.OutputsDir != want {
		t.Errorf("run --json = %+v, want a failed run with exit 3 and outputs in %s", res, want)
	}
	if data, err := os.ReadFile(filepath.Join(res.OutputsDir, "a")); err != nil || string(data) != "hi\n" {
		t.Errorf("outputs dir %s: %v %q, want the file the run wrote", res.OutputsDir, err, data)
	}

	dir := filepath.Join(t.TempDir(), "results")
	_, errs, _ = cli(t, rs.dir, "run", rs.commit, "--outputs", dir)
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if last := lines[len(lines)-1]; !strings.HasSuffix(last, " "+dir) || !strings.Contains(last, "outputs") {
		t.Errorf("the last line of run is %q; want it to name the outputs directory %s", last, dir)
	}
}

// TestRunFile: run FILE adds the Runfile, prints its commit and runs it;
// running the same bytes again runs the same commit.
func TestRunFile(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, echoRunfile)
	p := filepath.Join(t.TempDir(), "Runfile")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll("FROM IMAGE\nSCRATCH /s\nCMD [\"echo\", \"from a file\"]\n", "IMAGE", "busybox@"+rs.image)), 0o644); err != nil {
		t.Fatal(err)
	}
	var commits []string
	for range 2 {
		out, errs, code := cli(t, rs.dir, "--json", "run", p)
		var res struct{ Commit string }
		if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
			t.Fatalf("run FILE: exit %d\n%s\n%s", code, out, errs)
		}
		if !strings.Contains(errs, p+" is commit "+res.Commit) {
			t.Errorf("run FILE does not print the commit %s:\n%s", res.Commit, errs)
		}
		commits = append(commits, res.Commit)
	}
	if commits[0] != commits[1] {
		t.Errorf("the same Runfile ran as commits %v", commits)
	}
	if out, _ := mustCLI(t, 0, rs.dir, "cat", commits[0]); !strings.Contains(out, "from a file") {
		t.Errorf("the committed Runfile: %q", out)
	}
}
