package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/drivers/sqlite/sqlitetest"
	"github.com/runprov/runprov/plugins/history"
	slurmplug "github.com/runprov/runprov/plugins/slurm"
)

// historyStore makes a store with runprov init and fills it with the
// synthetic runs from first to first+n-1 (bare: without steps and files).
func historyStore(t *testing.T, n, outputs int, bare bool) string {
	t.Helper()
	store := t.TempDir()
	mustCLI(t, 0, store, "-q", "init")
	if n > 0 {
		withStore(t, store, func(st *sqlite.Store) {
			if err := sqlitetest.InsertSynthetic(context.Background(), st.DB(), 0, n, outputs, bare); err != nil {
				t.Fatal(err)
			}
		})
	}
	return store
}

func withStore(t *testing.T, store string, fn func(st *sqlite.Store)) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), store, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fn(st)
}

// putRuns stores runs through core.RunStore (CreateRun, then FinishRun),
// with an environment and a SystemKernel snapshot.
func putRuns(t *testing.T, store string, k *core.SystemKernel, runs ...*core.Run) {
	t.Helper()
	ctx := context.Background()
	withStore(t, store, func(st *sqlite.Store) {
		esha, err := st.PutEnvironment(ctx, core.Environment{UID: 1000, GID: 1000, User: "alice", Groups: []int{1000, 27}, Hostname: "node1"})
		if err != nil {
			t.Fatal(err)
		}
		ksha, err := st.PutSystemKernel(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			r.EnvironmentSHA256, r.SystemKernelSHA256 = esha, ksha
			start := *r
			start.Status, start.ExitCode, start.Steps, start.Inputs, start.Outputs = core.RunRunning, nil, nil, nil, nil
			if err := st.CreateRun(ctx, &start); err != nil {
				t.Fatal(err)
			}
			if err := st.FinishRun(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func testKernel() *core.SystemKernel {
	return &core.SystemKernel{KernelRelease: "6.1.0-test", Arch: "x86_64", OSRelease: "Debian GNU/Linux 12 (bookworm)",
		CPUModel: "test cpu", CPUCount: 2, MemTotalBytes: 8 << 30, Runtime: core.RuntimeInfo{Name: "runc", Version: "1.1.5"},
		Sysctls: map[string]string{"vm.swappiness": "60", "kernel.pid_max": "4194304"}, Modules: []string{"ext4", "overlay"}}
}

// twoRuns are two finished runs of one commit on one input that differ
// only in what each run has of its own.
func twoRuns() (*core.Run, *core.Run) {
	a, b := sqlitetest.SyntheticRun(1, 5), sqlitetest.SyntheticRun(2, 5)
	b.Commit, b.RunfileBlob, b.ImageDigest, b.ConfigDigest = a.Commit, a.RunfileBlob, a.ImageDigest, a.ConfigDigest
	b.Args, b.Argv, b.Hostname, b.Inputs, b.Outputs = a.Args, a.Argv, a.Hostname, a.Inputs, a.Outputs
	b.Status, b.ExitCode, b.Reason, b.Steps = a.Status, a.ExitCode, a.Reason, a.Steps
	b.ID = a.ID[:8] + b.ID[8:] // shares a's first 8 digits: ambiguous prefixes
	return &a, &b
}

func TestRunsJSON100k(t *testing.T) {
	const n = 100_000
	start := time.Now()
	store := historyStore(t, n, 0, true)
	t.Logf("%d synthetic runs stored in %v", n, time.Since(start))
	// The fixture writes runs shuffled: the last rows written are not the
	// newest, so insertion order cannot pass for time order.
	withStore(t, store, func(st *sqlite.Store) {
		var lastWritten int
		err := st.DB().QueryRow(`SELECT count(*) FROM (SELECT id FROM runs ORDER BY rowid DESC LIMIT 50)
			WHERE id IN (SELECT id FROM runs ORDER BY created_at DESC LIMIT 50)`).Scan(&lastWritten)
		if err != nil {
			t.Fatal(err)
		}
		if lastWritten > 5 {
			t.Fatalf("%d of the 50 runs written last are among the 50 newest: the fixture is not shuffled", lastWritten)
		}
	})

	out, _ := mustCLI(t, 0, store, "--json", "runs", "--limit", "50")
	var got []runListItem
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("runs --json: %v\n%.500s", err, out)
	}
	if len(got) != 50 {
		t.Fatalf("runs --json --limit 50: %d runs", len(got))
	}
	for i, r := range got {
		want := sqlitetest.SyntheticRun(n-1-i, 0)
		if r.ID != want.ID || !r.Created.Equal(want.Created) || r.Status != want.Status || r.Commit != want.Commit {
			t.Fatalf("run %d: %s created %v status %s; want %s created %v status %s", i, r.ID, r.Created, r.Status, want.ID, want.Created, want.Status)
		}
		if i > 0 && !r.Created.Before(got[i-1].Created) {
			t.Fatalf("runs %d and %d are not newest first", i-1, i)
		}
	}

	out, _ = mustCLI(t, 0, store, "--json", "runs", "--status", "succeeded", "--image", sqlitetest.SyntheticRun(3, 0).ImageDigest[7:19], "-n", "4")
	got = nil
	json.Unmarshal([]byte(out), &got)
	var wantIDs, gotIDs []string
	for i := n - 1; len(wantIDs) < 4; i-- {
		if r := sqlitetest.SyntheticRun(i, 0); r.Status == core.RunSucceeded && i%5 == 3 {
			wantIDs = append(wantIDs, r.ID)
		}
	}
	for _, r := range got {
		gotIDs = append(gotIDs, r.ID)
	}
	if !slices.Equal(gotIDs, wantIDs) {
		t.Fatalf("filtered runs %v, want %v", gotIDs, wantIDs)
	}

	out, _ = mustCLI(t, 0, store, "runs", "-n", "2")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "RUN") || !strings.HasPrefix(lines[1], core.ShortRunID(sqlitetest.RunID(n-1))) {
		t.Fatalf("runs table:\n%s", out)
	}
	out, _ = mustCLI(t, 0, store, "--csv", "runs", "-n", "1", "--since", "2026-01-01T00:00:00Z")
	if !strings.Contains(out, sqlitetest.RunID(n-1)) {
		t.Fatalf("runs --csv:\n%s", out)
	}
	mustCLI(t, 2, store, "runs", "--status", "done")
	mustCLI(t, 2, store, "runs", "--since", "last tuesday")
}

func TestShowCLI(t *testing.T) {
	store := historyStore(t, 0, 0, false)
	a, b := twoRuns()
	ok := sqlitetest.SyntheticRun(3, 2) // succeeded
	k := testKernel()
	putRuns(t, store, k, a, b, &ok)

	out, _ := mustCLI(t, 0, store, "--json", "show", a.ID)
	schema := compileCLISchema(t, runRecordSchema)
	validateJSON(t, schema, []byte(out))
	okOut, _ := mustCLI(t, 0, store, "--json", "show", ok.ID)
	validateJSON(t, schema, []byte(okOut))
	// The schema is not a formality: records missing or garbling what a
	// run records do not validate.
	for name, edit := range map[string]func(m map[string]any){
		"no commit":               func(m map[string]any) { delete(m, "commit") },
		"no system kernel":        func(m map[string]any) { delete(m, "system_kernel") },
		"short output sha256":     func(m map[string]any) { m["outputs"].([]any)[0].(map[string]any)["sha256"] = "abc" },
		"image digest not sha256": func(m map[string]any) { m["image_digest"] = "md5:0123" },
		"succeeded without end":   func(m map[string]any) { delete(m, "ended") },
		"unknown field":           func(m map[string]any) { m["colour"] = "blue" },
	} {
		var m map[string]any
		if err := json.Unmarshal([]byte(okOut), &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		inst, _ := json.Marshal(m)
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(inst))
		if err != nil {
			t.Fatal(err)
		}
		if schema.Validate(v) == nil {
			t.Errorf("%s: a broken run record validates against %s", name, runRecordSchema)
		}
	}
	var rec history.Record
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.ID != a.ID || len(rec.Outputs) != 5 || rec.Outputs[4].SHA256 != a.Outputs[4].SHA256 || rec.SystemKernel == nil ||
		rec.SystemKernel.Sysctls["vm.swappiness"] != "60" || rec.Environment == nil || rec.Environment.User != "alice" {
		t.Fatalf("show --json:\n%s", out)
	}
	out, _ = mustCLI(t, 0, store, "show", a.ID)
	for _, want := range []string{a.ID, "failed (exit 1)", "sha256:" + a.Outputs[0].SHA256, "6.1.0-test", "2 sysctls", "user alice", "input data: /data/in -> /safe_data (ro)"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "kernel.pid_max") {
		t.Error("show prints every sysctl without -v")
	}
	out, _ = mustCLI(t, 0, store, "-v", "show", a.ID)
	if !strings.Contains(out, "kernel.pid_max = 4194304") {
		t.Errorf("show -v lacks the sysctls:\n%s", out)
	}
	_, errs := mustCLI(t, 125, store, "show", a.ID[:8])
	if !strings.Contains(errs, "ambiguous") || !strings.Contains(errs, core.ShortRunID(a.ID)) || !strings.Contains(errs, core.ShortRunID(b.ID)) {
		t.Errorf("ambiguous prefix: %s", errs)
	}
	_, errs = mustCLI(t, 125, store, "show", "ffffffff")
	if !strings.Contains(errs, "not found") {
		t.Errorf("unknown run: %s", errs)
	}
}

func TestDiffCLI(t *testing.T) {
	store := historyStore(t, 0, 0, false)
	a, b := twoRuns()
	c := *b
	c.ID = sqlitetest.RunID(3)
	c.Inputs = []core.FileRecord{{Name: "data", Path: "table.csv", Size: 1000, SHA256: sqlitetest.Hex64("one byte changed")}}
	c.Outputs = slices.Clone(b.Outputs)
	c.Outputs[2].SHA256 = sqlitetest.Hex64("other output")
	putRuns(t, store, testKernel(), a, b, &c)

	out, _ := mustCLI(t, 0, store, "diff", a.ID, b.ID)
	if !strings.Contains(out, "are equivalent") {
		t.Errorf("diff of equivalent runs:\n%s", out)
	}
	out, _ = mustCLI(t, 1, store, "diff", a.ID, c.ID)
	for _, want := range []string{"differ", "inputs: 1 changed", "data/table.csv", "outputs: 1 changed", "/safe_outputs/out/00002.txt"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff lacks %q:\n%s", want, out)
		}
	}
	out, _ = mustCLI(t, 1, store, "--json", "diff", a.ID, c.ID)
	var d history.Diff
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if d.Equivalent || len(d.Inputs.Changed) != 1 || d.Inputs.Changed[0].Path != "table.csv" || d.Inputs.Changed[0].B.SHA256 != c.Inputs[0].SHA256 {
		t.Fatalf("diff --json: %+v", d.Inputs)
	}
	mustCLI(t, 125, store, "diff", a.ID, "0123456789")
	mustCLI(t, 2, store, "diff", a.ID)
}

const cliSchemaBase = "https://github.com/runprov/runprov/testdata/schemas/"

func compileCLISchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "schemas", "*.schema.json"))
	if len(files) == 0 {
		t.Fatal("no schemas in testdata/schemas")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := c.AddResource(cliSchemaBase+filepath.Base(f), doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Compile(cliSchemaBase + name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runRecordSchema is the schema of show --json and export --format json.
const runRecordSchema = "runprov-run-record.schema.json"

func validateJSON(t *testing.T, s *jsonschema.Schema, doc []byte) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if err := s.Validate(inst); err != nil {
		t.Fatalf("does not validate against %s: %v\n%.2000s", s.Location, err, doc)
	}
}

// collectSHA256 returns every string value under a key named sha256 (any
// depth), and every "sha256:HEX" string.
func collectSHA256(v any, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && (k == "sha256" || k == "runprov:sha256") {
				out[s] = true
			}
			collectSHA256(e, out)
		}
	case []any:
		for _, e := range x {
			collectSHA256(e, out)
		}
	case string:
		if h, ok := strings.CutPrefix(x, "sha256:"); ok && len(h) == 64 {
			out[h] = true
		}
	}
}

// TestExportCLI: each format validates against its schema, and the file
// and image digests in it are the ones show --json prints.
func TestExportCLI(t *testing.T) {
	store := historyStore(t, 0, 0, false)
	a, _ := twoRuns()
	a.Mounts = append(a.Mounts, core.RunMount{Kind: core.MountScratch, Target: "/scratch"})
	putRuns(t, store, testKernel(), a)
	out, _ := mustCLI(t, 0, store, "--json", "show", a.ID)
	validateJSON(t, compileCLISchema(t, runRecordSchema), []byte(out))
	var rec history.Record
	json.Unmarshal([]byte(out), &rec)
	want := map[string]bool{strings.TrimPrefix(rec.ImageDigest, "sha256:"): true}
	for _, f := range rec.Outputs {
		want[f.SHA256] = true
	}
	inputs := map[string]bool{}
	for _, f := range rec.Inputs {
		inputs[f.SHA256] = true
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		format, schema string
		inputs         bool // the format lists the inputs' hashes
	}{
		{"json", runRecordSchema, true},
		{"intoto", "intoto-statement-v1.schema.json", true},
		{"prov", "prov-json.schema.json", true},
		{"rocrate", "process-run-crate-0.5.schema.json", true},
	} {
		t.Run(tc.format, func(t *testing.T) {
			var doc []byte
			if tc.format == "rocrate" {
				crate := filepath.Join(dir, "crate")
				mustCLI(t, 0, store, "-q", "export", a.ID[:12], "--format", "rocrate", "-o", crate)
				var err error
				if doc, err = os.ReadFile(filepath.Join(crate, "ro-crate-metadata.json")); err != nil {
					t.Fatal(err)
				}
				validateJSON(t, compileCLISchema(t, "ro-crate-1.1.schema.json"), doc)
			} else {
				file := filepath.Join(dir, tc.format+".json")
				mustCLI(t, 0, store, "export", a.ID[:12], "--format", tc.format, "-o", file)
				var err error
				if doc, err = os.ReadFile(file); err != nil {
					t.Fatal(err)
				}
				stdout, _ := mustCLI(t, 0, store, "export", a.ID[:12], "--format", tc.format)
				if stdout != string(doc) {
					t.Errorf("export to stdout and to -o FILE differ")
				}
			}
			validateJSON(t, compileCLISchema(t, tc.schema), doc)
			var v any
			json.Unmarshal(doc, &v)
			got := map[string]bool{}
			collectSHA256(v, got)
			for h := range want {
				if !got[h] {
					t.Errorf("digest %s of show --json is not in the %s export", h, tc.format)
				}
			}
			for h := range inputs {
				if tc.inputs && !got[h] {
					t.Errorf("input digest %s is not in the %s export", h, tc.format)
				}
			}
			// Every file digest in the export is one the record has.
			for h := range got {
				if !want[h] && !inputs[h] && h != rec.SystemKernelSHA256 && h != strings.TrimPrefix(rec.ConfigDigest, "sha256:") {
					t.Errorf("the %s export has digest %s, which show --json does not", tc.format, h)
				}
			}
		})
	}
	mustCLI(t, 2, store, "export", a.ID, "--format", "rocrate")
	mustCLI(t, 2, store, "export", a.ID, "--format", "spdx")
	mustCLI(t, 2, store, "export", a.ID)
}

// deterministicRunfile summarises its input; timeRunfile also writes the
// moment it ran.
const (
	deterministicRunfile = `FROM IMAGE
CMD ["/bin/sh", "-c", "wc -l < /safe_data/table.csv > /safe_outputs/lines; sha256sum /safe_data/table.csv | cut -c1-64 > /safe_outputs/sum"]
`
	timeRunfile = `FROM IMAGE
CMD ["/bin/sh", "-c", "wc -l < /safe_data/table.csv > /safe_outputs/lines; cat /proc/uptime > /safe_outputs/time"]
`
	// linesRunfile's output does not change when a value in the table does.
	linesRunfile = `FROM IMAGE
CMD ["/bin/sh", "-c", "wc -l < /safe_data/table.csv > /safe_outputs/lines"]
`
	argRunfile = `FROM IMAGE
ARG WHO=world
ENV GREETING="hello ${WHO}"
CMD ["/bin/sh", "-c", "echo $GREETING > /safe_outputs/greeting"]
`
)

// TestHistoryWithRealRuns runs real containers: two runs of one commit on
// one input are equivalent; a changed input byte makes them differ and
// diff names it; reproduce says bit-for-bit for a deterministic Runfile,
// names the file for one that writes the time, and refuses changed inputs.
func TestHistoryWithRealRuns(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, deterministicRunfile)
	in := t.TempDir()
	table := filepath.Join(in, "table.csv")
	if err := os.WriteFile(table, []byte("a,b\n1,2\n3,4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(commit string) *core.Run {
		t.Helper()
		out, errs, code := cli(t, rs.dir, "--json", "run", commit, "--input", "data="+in)
		var r core.Run
		if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
			t.Fatalf("run %s: exit %d\n%s\n%s", commit, code, out, errs)
		}
		return &r
	}
	r1, r2 := run(rs.commit), run(rs.commit)
	out, _ := mustCLI(t, 0, rs.dir, "diff", r1.ID, r2.ID)
	if !strings.Contains(out, "equivalent") {
		t.Fatalf("diff of two runs on one input:\n%s", out)
	}

	if err := os.WriteFile(table, []byte("a,b\n1,2\n3,5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r3 := run(rs.commit)
	out, _ = mustCLI(t, 1, rs.dir, "diff", r1.ID, r3.ID)
	if !strings.Contains(out, "inputs: 1 changed") || !strings.Contains(out, "data/table.csv") || !strings.Contains(out, "/safe_outputs/sum") {
		t.Fatalf("diff after one input byte changed:\n%s", out)
	}
	_, errs := mustCLI(t, 125, rs.dir, "reproduce", r1.ID)
	if !strings.Contains(errs, "changed data/table.csv") || !strings.Contains(errs, "--allow-changed-inputs") {
		t.Fatalf("reproduce on changed inputs: %s", errs)
	}
	before := runCount(t, rs.dir)
	if before != 3 {
		t.Fatalf("a refused reproduce stored a run: %d runs", before)
	}
	// --allow-changed-inputs runs on the inputs as they are now; the
	// changed input changes one output, and the verdict, printed and
	// recorded, says the inputs had changed.
	out, errs = mustCLI(t, 1, rs.dir, "reproduce", "--allow-changed-inputs", r1.ID)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	verdict := lines[len(lines)-1]
	if !strings.HasPrefix(verdict, "not reproduced: changed /safe_outputs/sum") || strings.Contains(verdict, "/safe_outputs/lines") ||
		!strings.Contains(verdict, "inputs had changed: changed data/table.csv") {
		t.Fatalf("reproduce --allow-changed-inputs:\n%s\n%s", out, errs)
	}
	if !strings.Contains(errs, "inputs changed since the original run") {
		t.Errorf("reproduce --allow-changed-inputs does not warn:\n%s", errs)
	}
	newest := newestRun(t, rs.dir)
	if runCount(t, rs.dir) != before+1 || newest.ReproduceOf != r1.ID || newest.Verdict != verdict || newest.Status != core.RunSucceeded {
		t.Fatalf("the reproduction on changed inputs: %+v", newest)
	}
	if err := os.WriteFile(table, []byte("a,b\n1,2\n3,4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs = mustCLI(t, 0, rs.dir, "reproduce", r1.ID[:10])
	if lines := strings.Split(strings.TrimSpace(out), "\n"); lines[len(lines)-1] != history.BitForBit {
		t.Fatalf("reproduce of a deterministic run:\n%s\n%s", out, errs)
	}
	if newest := newestRun(t, rs.dir); newest.ReproduceOf != r1.ID || newest.Verdict != history.BitForBit {
		t.Fatalf("the reproduction's record: %+v", newest)
	}

	// Outputs that come out the same from changed inputs are still not a
	// plain bit-for-bit reproduction: the verdict says the inputs changed.
	counted := rs.add(t, linesRunfile)
	rl := run(counted)
	if err := os.WriteFile(table, []byte("a,b\n1,2\n3,5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs = mustCLI(t, 0, rs.dir, "reproduce", "--allow-changed-inputs", rl.ID)
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if want := history.BitForBit + " (inputs had changed: changed data/table.csv)"; lines[len(lines)-1] != want || newestRun(t, rs.dir).Verdict != want {
		t.Fatalf("reproduce --allow-changed-inputs with the same outputs: want %q\n%s\n%s", want, out, errs)
	}
	if err := os.WriteFile(table, []byte("a,b\n1,2\n3,4\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// A run's --arg values are reproduced: the Runfile's default would
	// write another output.
	greet := rs.add(t, argRunfile)
	out, errs, code := cli(t, rs.dir, "--json", "run", greet, "--input", "data="+in, "--arg", "WHO=bonjour")
	var ra core.Run
	if code != 0 || json.Unmarshal([]byte(out), &ra) != nil {
		t.Fatalf("run --arg: exit %d\n%s\n%s", code, out, errs)
	}
	if len(ra.Outputs) != 1 || ra.Outputs[0].SHA256 != sha256Hex("hello bonjour\n") || ra.Args["WHO"] != "bonjour" {
		t.Fatalf("run --arg WHO=bonjour: args %v, outputs %+v", ra.Args, ra.Outputs)
	}
	out, errs = mustCLI(t, 0, rs.dir, "--json", "reproduce", ra.ID)
	var rep struct {
		Run       string `json:"run"`
		Identical bool   `json:"identical"`
		Verdict   string `json:"verdict"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.Identical || rep.Verdict != history.BitForBit {
		t.Fatalf("reproduce of a run with --arg: %v\n%s\n%s", err, out, errs)
	}
	show, _ := mustCLI(t, 0, rs.dir, "--json", "show", rep.Run)
	var rr history.Record
	if err := json.Unmarshal([]byte(show), &rr); err != nil {
		t.Fatal(err)
	}
	if rr.Args["WHO"] != "bonjour" || rr.ReproduceOf != ra.ID || len(rr.Outputs) != 1 || rr.Outputs[0].SHA256 != ra.Outputs[0].SHA256 {
		t.Fatalf("the reproduction of a run with --arg: args %v, outputs %+v", rr.Args, rr.Outputs)
	}
	validateJSON(t, compileCLISchema(t, runRecordSchema), []byte(show))
	exported, _ := mustCLI(t, 0, rs.dir, "export", rep.Run, "--format", "json")
	validateJSON(t, compileCLISchema(t, runRecordSchema), []byte(exported))

	// Exports of a real run validate and carry its digests.
	statement, _ := mustCLI(t, 0, rs.dir, "export", r1.ID, "--format", "intoto")
	validateJSON(t, compileCLISchema(t, "intoto-statement-v1.schema.json"), []byte(statement))
	for _, f := range r1.Outputs {
		if !strings.Contains(statement, f.SHA256) {
			t.Errorf("output %s (%s) is not in the statement", f.Path, f.SHA256)
		}
	}
	crate := filepath.Join(t.TempDir(), "crate")
	mustCLI(t, 0, rs.dir, "export", r1.ID, "--format", "rocrate", "-o", crate)
	meta, err := os.ReadFile(filepath.Join(crate, "ro-crate-metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	validateJSON(t, compileCLISchema(t, "process-run-crate-0.5.schema.json"), meta)
	if rf, err := os.ReadFile(filepath.Join(crate, "Runfile")); err != nil || !strings.Contains(string(rf), "sha256sum") {
		t.Errorf("the crate's Runfile: %v %q", err, rf)
	}

	// A Runfile that writes the time does not reproduce; the verdict names
	// that file and only it.
	timed := rs.add(t, timeRunfile)
	rt := run(timed)
	out, errs = mustCLI(t, 1, rs.dir, "reproduce", rt.ID)
	last := strings.Split(strings.TrimSpace(out), "\n")
	verdict = last[len(last)-1]
	if !strings.HasPrefix(verdict, "not reproduced") || !strings.Contains(verdict, "/safe_outputs/time") || strings.Contains(verdict, "lines") {
		t.Fatalf("reproduce of a run that writes the time:\n%s\n%s", out, errs)
	}
	// diff between a commit's runs and another commit's shows the Runfiles' diff.
	out, _ = mustCLI(t, 1, rs.dir, "diff", r1.ID, rt.ID)
	if !strings.Contains(out, "-CMD") || !strings.Contains(out, "+CMD") || !strings.Contains(out, "cat /proc/uptime") {
		t.Errorf("diff across commits lacks the Runfile diff:\n%s", out)
	}
	// Real runs and their reproductions leave a store that holds.
	mustCLI(t, 0, rs.dir, "fsck")
}

// newestRun is the newest run of store as runs --json lists it.
func newestRun(t *testing.T, store string) runListItem {
	t.Helper()
	list, _ := mustCLI(t, 0, store, "--json", "runs", "-n", "1")
	var newest []runListItem
	if err := json.Unmarshal([]byte(list), &newest); err != nil || len(newest) != 1 {
		t.Fatalf("runs --json -n 1: %v\n%s", err, list)
	}
	return newest[0]
}

// TestFsckRuns corrupts a real store's run tables, snapshots and Slurm
// record files with SQL and files, one way per case, and sees fsck exit 125
// naming the run and the problem; the same store before the corruption,
// with runs, passes.
func TestFsckRuns(t *testing.T) {
	ctx := context.Background()
	exec := func(t *testing.T, store, q string, args ...any) {
		t.Helper()
		// A plain connection, foreign keys off, as the sqlite3 shell opens it.
		db, err := sql.Open("sqlite", "file:"+filepath.Join(store, "runprov.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		res, err := db.ExecContext(ctx, q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			t.Fatalf("%s: changed nothing", q)
		}
	}
	// slurmRun was sent to Slurm and marked aborted because its job wrote
	// no record in time.
	slurmRun := func() *core.Run {
		r := sqlitetest.SyntheticRun(7, 2)
		r.Executor, r.Slurm = "slurm", &core.SlurmJob{JobID: "424242", Node: "node1", Partition: "debug"}
		r.Status, r.ExitCode, r.Reason = core.RunAborted, nil, "slurm job 424242 COMPLETED; the job wrote no record"
		return &r
	}
	writeRecord := func(t *testing.T, store string, r core.Run) {
		t.Helper()
		dir := filepath.Join(store, "runs", r.ID)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := slurmplug.WriteRecord(dir, &slurmplug.Record{Run: r, Environment: &core.Environment{UID: 1, User: "bob", Hostname: "node1"}}); err != nil {
			t.Fatal(err)
		}
	}
	a, b := twoRuns()
	s := slurmRun()
	env := core.Environment{UID: 1000, GID: 1000, User: "alice", Groups: []int{1000, 27}, Hostname: "node1"} // as putRuns stores it
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, store string)
		want    []string // on stdout, each in one problem line
	}{
		{"steps and files of a deleted run", func(t *testing.T, store string) {
			exec(t, store, "DELETE FROM runs WHERE id = ?", a.ID)
		}, []string{"run " + a.ID + ": 1 run_steps row(s) of a run that does not exist", "run " + a.ID + ": 6 run_files row(s) of a run that does not exist"}},
		{"finished without an end time", func(t *testing.T, store string) {
			exec(t, store, "UPDATE runs SET ended_at = '' WHERE id = ?", b.ID)
		}, []string{"run " + b.ID + ": status failed but no end time"}},
		{"missing environment", func(t *testing.T, store string) {
			exec(t, store, "DELETE FROM environments")
		}, []string{"run " + a.ID + ": refers to environment " + env.SHA256() + ", which is not in the store", "run " + b.ID + ": refers to environment"}},
		{"missing system kernel snapshot", func(t *testing.T, store string) {
			exec(t, store, "UPDATE runs SET system_kernel_sha256 = ? WHERE id = ?", sqlitetest.Hex64("gone"), a.ID)
		}, []string{"run " + a.ID + ": refers to system kernel snapshot " + sqlitetest.Hex64("gone") + ", which is not in the store"}},
		{"tampered system kernel snapshot", func(t *testing.T, store string) {
			exec(t, store, `UPDATE system_kernels SET snapshot = replace(snapshot, '"60"', '"10"')`)
		}, []string{"run " + a.ID + ": its system kernel snapshot is corrupt", "digest mismatch"}},
		{"slurm record after the run was marked aborted", func(t *testing.T, store string) {
			late := *s
			exit := 0
			late.Status, late.ExitCode, late.Reason = core.RunSucceeded, &exit, ""
			writeRecord(t, store, late)
		}, []string{"run " + s.ID + ": ", "slurm record file never ingested: the store has the run aborted", "the record says succeeded"}},
		{"slurm record of a run not in the store", func(t *testing.T, store string) {
			r := sqlitetest.SyntheticRun(8, 0)
			writeRecord(t, store, r)
		}, []string{"run " + sqlitetest.RunID(8) + ": ", "record file of a run that is not in the store; never ingested"}},
		{"slurm record that is not a record", func(t *testing.T, store string) {
			if err := os.WriteFile(filepath.Join(store, "runs", s.ID, "record.json"), []byte(`{"version": 1, "run": {`), 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"run " + s.ID + ": ", "slurm record file is not a record"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := historyStore(t, 0, 0, false)
			a, b, s := *a, *b, *s
			putRuns(t, store, testKernel(), &a, &b, &s)
			if err := os.MkdirAll(filepath.Join(store, "runs", s.ID), 0o700); err != nil {
				t.Fatal(err)
			}
			_, errs := mustCLI(t, 0, store, "fsck")
			if !strings.Contains(errs, "holds") {
				t.Fatalf("fsck of a clean store with runs: %s", errs)
			}
			tc.corrupt(t, store)
			out, errs := mustCLI(t, 125, store, "fsck")
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("fsck output lacks %q:\n%s\n%s", w, out, errs)
				}
			}
			out, _ = mustCLI(t, 125, store, "--json", "fsck")
			var res struct {
				OK       bool           `json:"ok"`
				Problems []core.Problem `json:"problems"`
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil || res.OK || len(res.Problems) == 0 {
				t.Errorf("fsck --json: %v\n%s", err, out)
			}
		})
	}
}
