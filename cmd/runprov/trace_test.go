package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/drivers/sqlite/sqlitetest"
	"github.com/runprov/runprov/plugins/history"
)

// chain is three real runs joined by content: raw data → A → (copied and
// renamed on the host) → B → C.
type chain struct {
	rs        *runStore
	raw       string // the raw data file
	rawSum    string
	a, b, c   *core.Run
	cOut      string // C's output file
	outputDir map[string]string
}

// xssLabel is a Runfile LABEL that would retitle the page if a report ran it.
const xssLabel = `<script>document.title='pwned'</script>`

func runChain(t *testing.T) *chain {
	t.Helper()
	requireRunc(t)
	rs := newRunStore(t, "FROM IMAGE\nCMD [\"/bin/sh\", \"-c\", \"tr a-z A-Z < /safe_data/raw.csv > /safe_outputs/upper.csv\"]\n")
	ch := &chain{rs: rs, outputDir: map[string]string{}}
	dataDir := t.TempDir()
	ch.raw = filepath.Join(dataDir, "raw.csv")
	if err := os.WriteFile(ch.raw, []byte("id,value\n1,alpha\n2,beta\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ch.rawSum = fileSum(t, ch.raw)
	run := func(name, dataArg string) *core.Run {
		out := filepath.Join(t.TempDir(), name)
		ch.outputDir[name] = out
		r, errs, code := rs.run(t, "--input", "data="+dataArg, "--outputs", out)
		if code != 0 || r == nil || r.Status != core.RunSucceeded {
			t.Fatalf("run %s: exit %d\n%s", name, code, errs)
		}
		return r
	}
	ch.a = run("a", dataDir)

	// A's output, copied and renamed elsewhere, is B's input.
	moved := t.TempDir()
	data, err := os.ReadFile(filepath.Join(ch.outputDir["a"], "upper.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(moved, "table.csv"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	rs.commit = rs.add(t, "FROM IMAGE\nCMD [\"/bin/sh\", \"-c\", \"cut -d, -f2 /safe_data/table.csv > /safe_outputs/values.txt\"]\n")
	ch.b = run("b", moved)
	rs.commit = rs.add(t, "FROM IMAGE\nLABEL note=\""+xssLabel+"\"\nCMD [\"/bin/sh\", \"-c\", \"wc -l < /safe_data/values.txt > /safe_outputs/count.txt\"]\n")
	ch.c = run("c", ch.outputDir["b"])
	ch.cOut = filepath.Join(ch.outputDir["c"], "count.txt")
	return ch
}

func fileSum(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestTraceChain(t *testing.T) {
	ch := runChain(t)
	store := ch.rs.dir

	// Up from C's output: C, B, A, and the raw data marked raw.
	out, _ := mustCLI(t, 0, store, "trace", ch.cOut)
	for _, r := range []*core.Run{ch.a, ch.b, ch.c} {
		if !strings.Contains(out, core.ShortRunID(r.ID)) {
			t.Errorf("trace of C's output does not name run %s:\n%s", r.ID, out)
		}
	}
	if !strings.Contains(out, ch.rawSum+"  raw") {
		t.Errorf("trace does not reach the raw data %s marked raw:\n%s", ch.rawSum, out)
	}

	js, _ := mustCLI(t, 0, store, "--json", "trace", ch.cOut)
	validateJSON(t, compileCLISchema(t, "trace.schema.json"), []byte(js))
	var l history.Lineage
	if err := json.Unmarshal([]byte(js), &l); err != nil {
		t.Fatal(err)
	}
	raw := map[string]bool{}
	for _, c := range l.Contents {
		raw[c.SHA256] = c.Raw
	}
	if len(l.Runs) != 3 || !raw[ch.rawSum] || raw[fileSum(t, ch.cOut)] {
		t.Errorf("--json: %d runs, raw %v; want 3 runs and only the raw data raw\n%s", len(l.Runs), raw, js)
	}

	// Down from the raw file reaches C, by content, through the renamed copy.
	out, _ = mustCLI(t, 0, store, "trace", "--down", ch.raw)
	if !strings.Contains(out, core.ShortRunID(ch.c.ID)) || !strings.Contains(out, "used by run "+core.ShortRunID(ch.b.ID)) ||
		!strings.Contains(strings.SplitN(out, "\n", 2)[0], ch.rawSum+"  raw") {
		t.Errorf("trace --down of the raw data does not reach B and C:\n%s", out)
	}
	// --depth 1 stops at A.
	out, _ = mustCLI(t, 0, store, "trace", "--down", "--depth", "1", "sha256:"+ch.rawSum)
	if strings.Contains(out, core.ShortRunID(ch.b.ID)) || !strings.Contains(out, "beyond --depth 1") {
		t.Errorf("--depth 1 went past A:\n%s", out)
	}

	prov, _ := mustCLI(t, 0, store, "trace", "--format", "prov", ch.cOut)
	validateJSON(t, compileCLISchema(t, "prov-json.schema.json"), []byte(prov))
	for _, r := range []*core.Run{ch.a, ch.b, ch.c} {
		if !strings.Contains(prov, "runprov:run/"+r.ID) {
			t.Errorf("PROV document has no activity for run %s", r.ID)
		}
	}
	if !strings.Contains(prov, "runprov:content/sha256/"+ch.rawSum) {
		t.Errorf("PROV document has no entity for the raw data")
	}

	dot, _ := mustCLI(t, 0, store, "trace", "--dot", ch.cOut)
	if !strings.HasPrefix(dot, "digraph lineage {") || !strings.Contains(dot, `"run:`+ch.a.ID+`"`) {
		t.Errorf("--dot:\n%s", dot)
	}

	// Unknown content: exit 1 with a message; a missing file is an error.
	other := filepath.Join(t.TempDir(), "other")
	os.WriteFile(other, []byte("never seen"), 0o644)
	if _, errs := mustCLI(t, exitNoMatch, store, "trace", other); !strings.Contains(errs, "no run produced or used") {
		t.Errorf("unknown content: %s", errs)
	}
	mustCLI(t, exitRunprov, store, "trace", filepath.Join(t.TempDir(), "missing"))
	mustCLI(t, exitRunprov, store, "trace", "sha256:xyz")
}

// TestContentIndexMigration: a store from before migration 0008 (version 7)
// gains the covering content index and the (commit, time) index when
// runprov opens it, and trace's lookup uses the first.
func TestContentIndexMigration(t *testing.T) {
	ctx := context.Background()
	store := filepath.Join(t.TempDir(), "store")
	st, err := sqlite.InitAtVersion(ctx, store, nil, 7)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	mustCLI(t, 0, store, "runs")
	out, _ := mustCLI(t, 0, store, "query", "--csv", "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('runs', 'run_files') ORDER BY name")
	if !strings.Contains(out, "run_files_content") || strings.Contains(out, "run_files_sha256") ||
		!strings.Contains(out, "runs_commit_created") || strings.Contains(out, "runs_commit\n") {
		t.Errorf("indexes after the upgrade:\n%s", out)
	}
	out, _ = mustCLI(t, 0, store, "query", "--csv", "EXPLAIN QUERY PLAN SELECT count(DISTINCT run_id) FROM run_files WHERE sha256 = 'x' AND kind = 'output'")
	if !strings.Contains(out, "COVERING INDEX run_files_content") {
		t.Errorf("the content lookup does not use the covering index:\n%s", out)
	}
}

// TestTraceFanOutAndCycles: content 50 runs share is capped at --max-runs
// with the rest counted, and a cycle of content (X makes q from p, Y makes
// p from q) ends.
func TestTraceFanOutAndCycles(t *testing.T) {
	store := newCLIStore(t)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, store, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var runs []core.Run
	for i := range 50 {
		runs = append(runs, sqlitetest.SyntheticRun(i, 1))
	}
	shared := runs[0].Inputs[0].SHA256 // every 7th run reads it
	p, q := sqlitetest.Hex64("p"), sqlitetest.Hex64("q")
	x, y := sqlitetest.SyntheticRun(100, 0), sqlitetest.SyntheticRun(101, 0)
	x.Inputs = []core.FileRecord{{Name: "data", Path: "p", SHA256: p}}
	x.Outputs = []core.FileRecord{{Name: "/safe_outputs", Path: "q", SHA256: q}}
	y.Inputs = []core.FileRecord{{Name: "data", Path: "q", SHA256: q}}
	y.Outputs = []core.FileRecord{{Name: "/safe_outputs", Path: "p", SHA256: p}}
	if err := sqlitetest.InsertRuns(ctx, st.DB(), append(runs, x, y)); err != nil {
		t.Fatal(err)
	}
	st.Close()

	out, _ := mustCLI(t, 0, store, "trace", "--down", "--max-runs", "3", "sha256:"+shared)
	if n := strings.Count(out, "used by run "); n != 3 || !strings.Contains(out, "... and 5 more run(s) (of 8") {
		t.Errorf("fan-out of content 8 runs used, capped at 3: %d runs shown\n%s", n, out)
	}
	for _, dir := range []string{"up", "down"} {
		args := []string{"--json", "trace", "sha256:" + p}
		if dir == "down" {
			args = append(args, "--down")
		}
		js, _ := mustCLI(t, 0, store, args...)
		var l history.Lineage
		if err := json.Unmarshal([]byte(js), &l); err != nil {
			t.Fatal(err)
		}
		if len(l.Runs) != 2 || len(l.Contents) != 2 || len(l.Edges) != 4 {
			t.Errorf("%s through a cycle: %d runs, %d contents, %d edges; want 2, 2, 4\n%s", dir, len(l.Runs), len(l.Contents), len(l.Edges), js)
		}
	}
}
