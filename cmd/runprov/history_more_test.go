package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/history"
)

// kernelSection is the "system kernel:" section of diff's text output.
func kernelSection(t *testing.T, out string) string {
	t.Helper()
	_, rest, ok := strings.Cut(out, "\nsystem kernel: ")
	if !ok {
		t.Fatalf("no system kernel section:\n%s", out)
	}
	sec, _, _ := strings.Cut(rest, "\n\n")
	return sec
}

// TestDiffCLIVerboseKernel: two runs on SystemKernel snapshots that differ
// in more sysctls than diff lists: without -v it lists maxListed settings
// and says how many more; with -v it lists every one, old and new value.
func TestDiffCLIVerboseKernel(t *testing.T) {
	store := historyStore(t, 0, 0, false)
	a, b := twoRuns()
	ka, kb := testKernel(), testKernel()
	ka.Sysctls, kb.Sysctls = maps.Clone(ka.Sysctls), maps.Clone(kb.Sysctls)
	const n = maxListed + 7
	for i := range n {
		k := fmt.Sprintf("net.test.setting_%02d", i)
		ka.Sysctls[k], kb.Sysctls[k] = fmt.Sprint(i), fmt.Sprint(1000+i)
	}
	kb.Modules = append(kb.Modules, "zram")
	putRuns(t, store, ka, a)
	putRuns(t, store, kb, b)

	// Lines of the section naming a setting of ours, and the others.
	changed := func(sec string) (sysctls map[string]string, other []string) {
		sysctls = map[string]string{}
		for _, l := range strings.Split(sec, "\n")[2:] { // after the summary and the snapshot line
			l = strings.TrimSpace(l)
			if i := strings.Index(l, "net.test.setting_"); i >= 0 {
				name, val, _ := strings.Cut(l[i:], ": ")
				sysctls[name] = val
			} else {
				other = append(other, l)
			}
		}
		return sysctls, other
	}

	out, _ := mustCLI(t, 1, store, "diff", a.ID, b.ID)
	sec := kernelSection(t, out)
	if !strings.Contains(sec, fmt.Sprintf("%d sysctls", n)) || !strings.Contains(sec, "+1/-0 modules") {
		t.Errorf("summary line does not count the differences:\n%s", sec)
	}
	short, other := changed(sec)
	total := n + 1 // the sysctls and the module
	if len(short)+len(other)-1 != maxListed || !strings.Contains(sec, fmt.Sprintf("... and %d more settings (all of them with -v)", total-maxListed)) {
		t.Errorf("without -v: %d settings and %v listed, want %d and a count of the %d more:\n%s", len(short), other, maxListed, total-maxListed, sec)
	}

	out, _ = mustCLI(t, 1, store, "-v", "diff", a.ID, b.ID)
	sec = kernelSection(t, out)
	full, other := changed(sec)
	if strings.Contains(sec, "more settings") {
		t.Errorf("-v still truncates:\n%s", sec)
	}
	for i := range n {
		name := fmt.Sprintf("net.test.setting_%02d", i)
		if want := fmt.Sprintf("%d -> %d", i, 1000+i); full[name] != want {
			t.Errorf("-v: %s is %q, want %q", name, full[name], want)
		}
	}
	if len(full) != n || len(other) != 1 || !strings.Contains(other[0], "zram") {
		t.Errorf("-v: %d settings and %v listed, want %d and the zram module:\n%s", len(full), other, n, sec)
	}
	for _, same := range []string{"vm.swappiness", "kernel.pid_max", "ext4"} {
		if strings.Contains(sec, same) {
			t.Errorf("-v lists %s, which both snapshots share:\n%s", same, sec)
		}
	}
}

// TestQueryRunTablesReadOnly: runprov query reads the run tables (runs,
// run_steps, run_files, environments, system_kernels) and refuses every
// statement that would change them, leaving them as they were.
func TestQueryRunTablesReadOnly(t *testing.T) {
	store := historyStore(t, 0, 0, false)
	a, b := twoRuns()
	putRuns(t, store, testKernel(), a, b)

	query := func(q string) []map[string]any {
		t.Helper()
		out, _ := mustCLI(t, 0, store, "--json", "query", q)
		var rows []map[string]any
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("query %s: %v\n%s", q, err, out)
		}
		return rows
	}
	one := func(q string) any {
		t.Helper()
		rows := query(q)
		if len(rows) != 1 || len(rows[0]) != 1 {
			t.Fatalf("query %s: %v, want one value", q, rows)
		}
		for _, v := range rows[0] {
			return v
		}
		return nil
	}
	id := "'" + a.ID + "'"
	if n := one("SELECT count(*) FROM runs"); n != float64(2) {
		t.Errorf("runs: %v rows, want 2", n)
	}
	if s := one("SELECT status FROM runs WHERE id = " + id); s != string(a.Status) {
		t.Errorf("runs.status %v, want %s", s, a.Status)
	}
	if n := one("SELECT count(*) FROM run_steps WHERE run_id = " + id); n != float64(len(a.Steps)) || len(a.Steps) == 0 {
		t.Errorf("run_steps: %v rows, want %d", n, len(a.Steps))
	}
	if n := one("SELECT count(*) FROM run_files WHERE run_id = " + id + " AND kind = 'output'"); n != float64(len(a.Outputs)) || len(a.Outputs) == 0 {
		t.Errorf("run_files outputs: %v rows, want %d", n, len(a.Outputs))
	}
	if n := one("SELECT count(*) FROM run_files WHERE run_id = " + id + " AND kind = 'input'"); n != float64(len(a.Inputs)) || len(a.Inputs) == 0 {
		t.Errorf("run_files inputs: %v rows, want %d", n, len(a.Inputs))
	}
	if s := one("SELECT sha256 FROM run_files WHERE run_id = " + id + " AND kind = 'output' AND path = '" + a.Outputs[0].Path + "'"); s != a.Outputs[0].SHA256 {
		t.Errorf("run_files sha256 %v, want %s", s, a.Outputs[0].SHA256)
	}
	if u := one("SELECT e.user FROM runs r JOIN environments e ON e.sha256 = r.environment_sha256 WHERE r.id = " + id); u != "alice" {
		t.Errorf("environments.user through runs: %v", u)
	}
	if k := one("SELECT k.kernel_release FROM runs r JOIN system_kernels k ON k.sha256 = r.system_kernel_sha256 WHERE r.id = " + id); k != testKernel().KernelRelease {
		t.Errorf("system_kernels.kernel_release through runs: %v", k)
	}

	tables := []string{"runs", "run_steps", "run_files", "environments", "system_kernels"}
	state := func() string {
		t.Helper()
		var b strings.Builder
		for _, tb := range tables {
			out, _ := mustCLI(t, 0, store, "--json", "query", "SELECT * FROM "+tb+" ORDER BY 1, 2")
			fmt.Fprintf(&b, "%s: %s\n", tb, out)
		}
		return b.String()
	}
	before := state()
	attached := filepath.Join(t.TempDir(), "attached.db")
	for _, q := range []string{
		"INSERT INTO runs (id) VALUES ('" + strings.Repeat("f", 32) + "')",
		"INSERT INTO run_files SELECT * FROM run_files",
		"INSERT INTO environments SELECT * FROM environments",
		"REPLACE INTO system_kernels SELECT * FROM system_kernels",
		"UPDATE runs SET status = 'failed'",
		"UPDATE run_steps SET exit_code = 9",
		"UPDATE system_kernels SET kernel_release = 'other'",
		"DELETE FROM runs",
		"DELETE FROM run_files",
		"DELETE FROM run_steps",
		"DELETE FROM environments",
		"DELETE FROM system_kernels",
		"WITH x AS (SELECT id FROM runs) DELETE FROM runs WHERE id IN x",
		"ATTACH DATABASE '" + attached + "' AS other",
		"DROP TABLE run_files",
		"CREATE TABLE runs_copy AS SELECT * FROM runs",
	} {
		_, errs, code := cli(t, store, "query", q)
		if code != exitRunprov || !strings.Contains(errs, "read-only") {
			t.Errorf("query %q: exit %d, want %d and a read-only refusal:\n%s", q, code, exitRunprov, errs)
		}
	}
	if after := state(); after != before {
		t.Errorf("refused statements changed the run tables:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := os.Stat(attached); err == nil {
		t.Errorf("ATTACH created %s", attached)
	}
}

// TestExportProvRealRun exports a real run (runc, an input, two outputs)
// as W3C PROV-JSON: it validates against testdata/schemas, its digests
// are the ones show --json prints, and every relation names a record the
// document defines.
func TestExportProvRealRun(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, deterministicRunfile)
	in := t.TempDir()
	if err := os.WriteFile(filepath.Join(in, "table.csv"), []byte("a,b\n1,2\n3,4\n5,6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := cli(t, rs.dir, "--json", "run", rs.commit, "--input", "data="+in)
	var r core.Run
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errs)
	}
	if len(r.Outputs) != 2 || len(r.Inputs) != 1 {
		t.Fatalf("run recorded outputs %+v inputs %+v", r.Outputs, r.Inputs)
	}
	shown, _ := mustCLI(t, 0, rs.dir, "--json", "show", r.ID)
	var rec history.Record
	if err := json.Unmarshal([]byte(shown), &rec); err != nil {
		t.Fatal(err)
	}
	doc, _ := mustCLI(t, 0, rs.dir, "export", r.ID, "--format", "prov")
	validateJSON(t, compileCLISchema(t, "prov-json.schema.json"), []byte(doc))

	var v map[string]any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	collectSHA256(v, got)
	want := map[string]string{strings.TrimPrefix(rec.ImageDigest, "sha256:"): "image"}
	for _, f := range rec.Inputs {
		want[f.SHA256] = "input " + f.Path
	}
	for _, f := range rec.Outputs {
		want[f.SHA256] = "output " + f.Path
	}
	for h, what := range want {
		if !got[h] {
			t.Errorf("the %s digest %s of show --json is not in the PROV export", what, h)
		}
	}
	for h := range got {
		if want[h] == "" && h != rec.SystemKernelSHA256 && h != strings.TrimPrefix(rec.ConfigDigest, "sha256:") {
			t.Errorf("the PROV export has digest %s, which show --json does not", h)
		}
	}
	if !strings.Contains(doc, rec.Commit) {
		t.Errorf("the PROV export does not name the commit %s", rec.Commit)
	}
	// The outputs' sha256 sums are those of the files the run wrote.
	for _, f := range rec.Outputs {
		data, err := os.ReadFile(filepath.Join(rs.dir, "runs", r.ID, "outputs", f.Path))
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("output %s: file sha256 %x, recorded %s", f.Path, sum, f.SHA256)
		}
	}

	// Every relation refers to defined records.
	defined := map[string]string{}
	for _, kind := range []string{"entity", "activity", "agent"} {
		recs, _ := v[kind].(map[string]any)
		if len(recs) == 0 {
			t.Errorf("no %s records", kind)
		}
		for id := range recs {
			defined[id] = kind
		}
	}
	roles := map[string]string{"prov:entity": "entity", "prov:activity": "activity", "prov:agent": "agent",
		"prov:plan": "entity", "prov:delegate": "agent", "prov:responsible": "agent",
		"prov:informed": "activity", "prov:informant": "activity"}
	relations := 0
	for _, rel := range []string{"used", "wasGeneratedBy", "wasAssociatedWith", "wasAttributedTo", "actedOnBehalfOf", "wasInformedBy"} {
		recs, _ := v[rel].(map[string]any)
		for id, x := range recs {
			relations++
			for k, ref := range x.(map[string]any) {
				kind, ok := roles[k]
				if !ok {
					continue
				}
				if s, _ := ref.(string); defined[s] != kind {
					t.Errorf("%s %s: %s is %v, not a defined %s", rel, id, k, ref, kind)
				}
			}
		}
	}
	used, _ := v["used"].(map[string]any)
	generated, _ := v["wasGeneratedBy"].(map[string]any)
	// The Runfile, the image and the input are used; the two outputs generated.
	if relations == 0 || len(used) != 3 || len(generated) != len(rec.Outputs) {
		t.Errorf("%d relations, %d used, %d wasGeneratedBy (want 3 and %d)", relations, len(used), len(generated), len(rec.Outputs))
	}
}
