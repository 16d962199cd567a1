package history

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/sqlite/sqlitetest"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

const schemaBase = "https://github.com/runprov/runprov/testdata/schemas/"

// compileSchema compiles one of testdata/schemas with the others as
// resources it may refer to; formats (uri, date-time) are asserted.
func compileSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	dir := filepath.Join("..", "..", "testdata", "schemas")
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	files, err := filepath.Glob(filepath.Join(dir, "*.schema.json"))
	if err != nil || len(files) < 5 {
		t.Fatalf("schemas in %s: %v %v", dir, files, err)
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
		if err := c.AddResource(schemaBase+filepath.Base(f), doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Compile(schemaBase + name)
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return s
}

// validate checks the JSON bytes doc against schema and returns the error.
func validate(t *testing.T, s *jsonschema.Schema, doc []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	return s.Validate(inst)
}

func testRecord() *Record {
	r := sqlitetest.SyntheticRun(7, 4)
	r.Outputs = append(r.Outputs, core.FileRecord{Name: "/safe_outputs", Path: "latest", Link: "out/00003.txt"},
		core.FileRecord{Name: "/safe_outputs", Path: "with space & ü.txt", Size: 2, SHA256: sha("hi")})
	r.IndexDigest = "sha256:" + sqlitetest.Hex64("index")
	r.ImageRef = "busybox:1.36" // a short name: not a URI host
	k := &core.SystemKernel{KernelRelease: "6.1.0", Runtime: core.RuntimeInfo{Name: "runc", Version: "1.1.5"}}
	r.SystemKernelSHA256 = k.SHA256()
	r.ReproduceOf = sqlitetest.RunID(3)
	r.Verdict = BitForBit
	return &Record{Run: r, SystemKernel: k, Environment: &core.Environment{UID: 1000, GID: 1000, User: "alice", Groups: []int{1000}, Hostname: r.Hostname}}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mutate decodes doc, applies f and encodes it again.
func mutate(t *testing.T, doc []byte, f func(m map[string]any)) []byte {
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	return mustMarshal(t, m)
}

func TestInTotoValidates(t *testing.T) {
	s := compileSchema(t, "intoto-statement-v1.schema.json")
	rec := testRecord()
	st, err := InToto(rec, ExportOptions{Version: "v0.test"})
	if err != nil {
		t.Fatal(err)
	}
	doc := mustMarshal(t, st)
	if err := validate(t, s, doc); err != nil {
		t.Fatalf("statement does not validate: %v\n%s", err, doc)
	}
	// Subjects are exactly the outputs with content, by the recorded hash.
	want := map[string]string{}
	for _, f := range rec.Outputs {
		if f.SHA256 != "" {
			want[FileLabel(f.Name, f.Path)] = f.SHA256
		}
	}
	if len(st.Subject) != len(want) {
		t.Fatalf("%d subjects, want %d", len(st.Subject), len(want))
	}
	for _, sub := range st.Subject {
		if want[sub.Name] != sub.Digest["sha256"] {
			t.Errorf("subject %s: %v, want %s", sub.Name, sub.Digest, want[sub.Name])
		}
	}
	deps := st.Predicate.BuildDefinition.ResolvedDependencies
	if deps[0].Digest["gitCommit"] != rec.Commit || deps[1].Digest["sha256"] != strings.TrimPrefix(rec.ImageDigest, "sha256:") {
		t.Errorf("resolved dependencies %+v", deps[:2])
	}
	if st.Predicate.RunDetails.Metadata.InvocationID != rec.ID {
		t.Errorf("invocation id %q", st.Predicate.RunDetails.Metadata.InvocationID)
	}

	// The schema is not a rubber stamp.
	for name, bad := range map[string][]byte{
		"wrong _type":       mutate(t, doc, func(m map[string]any) { m["_type"] = "https://in-toto.io/Statement/v0.1" }),
		"no subject":        mutate(t, doc, func(m map[string]any) { m["subject"] = []any{} }),
		"subject sans hash": mutate(t, doc, func(m map[string]any) { delete(m["subject"].([]any)[0].(map[string]any), "digest") }),
		"short sha256": mutate(t, doc, func(m map[string]any) {
			m["subject"].([]any)[0].(map[string]any)["digest"] = map[string]any{"sha256": "abc"}
		}),
		"no builder id": mutate(t, doc, func(m map[string]any) {
			delete(m["predicate"].(map[string]any)["runDetails"].(map[string]any)["builder"].(map[string]any), "id")
		}),
		"local time": mutate(t, doc, func(m map[string]any) {
			m["predicate"].(map[string]any)["runDetails"].(map[string]any)["metadata"].(map[string]any)["startedOn"] = "2026-01-01T01:00:00+01:00"
		}),
		"unknown field": mutate(t, doc, func(m map[string]any) {
			m["predicate"].(map[string]any)["buildDefinition"].(map[string]any)["buildConfig"] = "x"
		}),
		"predicate missing": mutate(t, doc, func(m map[string]any) { delete(m, "predicate") }),
		"buildType not URI": mutate(t, doc, func(m map[string]any) {
			m["predicate"].(map[string]any)["buildDefinition"].(map[string]any)["buildType"] = "not a uri"
		}),
		"dependency no hash": mutate(t, doc, func(m map[string]any) {
			m["predicate"].(map[string]any)["buildDefinition"].(map[string]any)["resolvedDependencies"] = []any{map[string]any{"name": "x"}}
		}),
	} {
		if validate(t, s, bad) == nil {
			t.Errorf("%s: the schema accepts it", name)
		}
	}

	// A run without output files (it failed, say) is the statement's
	// subject itself, so that its record can be signed too.
	rec.Outputs = nil
	st, err = InToto(rec, ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Subject) != 1 || st.Subject[0].Digest[RunDigest] != rec.ID || st.Subject[0].URI != "runprov:run/"+rec.ID {
		t.Errorf("the subject of a run without outputs: %+v", st.Subject)
	}
	if err := validate(t, s, mustMarshal(t, st)); err != nil {
		t.Errorf("the statement of a run without outputs does not validate: %v", err)
	}
}

func TestProvValidates(t *testing.T) {
	s := compileSchema(t, "prov-json.schema.json")
	rec := testRecord()
	doc := mustMarshal(t, Prov(rec, ExportOptions{Version: "v0.test"}))
	if err := validate(t, s, doc); err != nil {
		t.Fatalf("PROV-JSON does not validate: %v\n%s", err, doc)
	}
	checkProvRefs(t, doc)
	var p ProvDocument
	json.Unmarshal(doc, &p)
	hashes := map[string]bool{}
	for _, e := range p.Entity {
		if h, ok := e["runprov:sha256"].(string); ok {
			hashes[h] = true
		}
	}
	for _, f := range append(rec.Inputs, rec.Outputs...) {
		if f.SHA256 != "" && !hashes[f.SHA256] {
			t.Errorf("no entity with the sha256 of %s", f.Path)
		}
	}
	if len(p.WasGeneratedBy) != len(rec.Outputs) || len(p.Activity) != 2 || len(p.Agent) != 2 {
		t.Errorf("%d generations for %d outputs, %d activities, %d agents", len(p.WasGeneratedBy), len(rec.Outputs), len(p.Activity), len(p.Agent))
	}
	for name, bad := range map[string][]byte{
		"id without prefix":  mutate(t, doc, func(m map[string]any) { m["entity"].(map[string]any)["no prefix"] = map[string]any{} }),
		"used sans activity": mutate(t, doc, func(m map[string]any) { m["used"] = map[string]any{"_:x": map[string]any{"prov:entity": "runprov:x"}} }),
		"bad startTime": mutate(t, doc, func(m map[string]any) {
			m["activity"].(map[string]any)["runprov:a"] = map[string]any{"prov:startTime": "yesterday"}
		}),
		"object attribute": mutate(t, doc, func(m map[string]any) {
			m["agent"].(map[string]any)["runprov:a"] = map[string]any{"runprov:x": map[string]any{"y": 1}}
		}),
		"unknown record kind": mutate(t, doc, func(m map[string]any) { m["wasCausedBy"] = map[string]any{} }),
	} {
		if validate(t, s, bad) == nil {
			t.Errorf("%s: the schema accepts it", name)
		}
	}
}

// checkProvRefs checks what the schema cannot: every relation names
// records the document declares, and every prefix used is declared.
func checkProvRefs(t *testing.T, doc []byte) {
	t.Helper()
	var m map[string]map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	declared := map[string]string{}
	for _, kind := range []string{"entity", "activity", "agent"} {
		for id := range m[kind] {
			declared[id] = kind
		}
	}
	args := map[string]string{"prov:entity": "entity", "prov:activity": "activity", "prov:agent": "agent", "prov:plan": "entity",
		"prov:delegate": "agent", "prov:responsible": "agent", "prov:informed": "activity", "prov:informant": "activity"}
	for kind, recs := range m {
		if kind == "prefix" || declared[kind] != "" {
			continue
		}
		for id, r := range recs {
			for arg, v := range r.(map[string]any) {
				if want, ok := args[arg]; ok && declared[v.(string)] != want {
					t.Errorf("%s %s: %s %v is not a declared %s", kind, id, arg, v, want)
				}
			}
		}
	}
	for id := range declared {
		pfx, _, _ := strings.Cut(id, ":")
		if _, ok := m["prefix"][pfx]; !ok && pfx != "prov" && pfx != "xsd" {
			t.Errorf("%s uses undeclared prefix %s", id, pfx)
		}
	}
}

func TestROCrateValidates(t *testing.T) {
	crate := compileSchema(t, "ro-crate-1.1.schema.json")
	prc := compileSchema(t, "process-run-crate-0.5.schema.json")
	rec := testRecord()
	runfile := []byte("FROM x@sha256:" + sqlitetest.Hex64("x") + "\n")
	files, err := ROCrate(rec, runfile, ExportOptions{Version: "v0.test"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "crate")
	if err := WriteCrate(dir, files, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteCrate(dir, files, false); err == nil {
		t.Fatal("WriteCrate over a non-empty directory: no error")
	}
	doc, err := os.ReadFile(filepath.Join(dir, ROCrateMetadataFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*jsonschema.Schema{crate, prc} {
		if err := validate(t, s, doc); err != nil {
			t.Fatalf("crate does not validate: %v\n%s", err, doc)
		}
	}
	checkCrate(t, dir, doc, rec)

	for name, bad := range map[string][]byte{
		"no CreateAction": mutate(t, doc, func(m map[string]any) {
			g := m["@graph"].([]any)
			for i, e := range g {
				if e.(map[string]any)["@type"] == "CreateAction" {
					m["@graph"] = append(g[:i], g[i+1:]...)
					return
				}
			}
		}),
		"action without instrument": mutate(t, doc, func(m map[string]any) {
			for _, e := range m["@graph"].([]any) {
				if e.(map[string]any)["@type"] == "CreateAction" {
					delete(e.(map[string]any), "instrument")
				}
			}
		}),
		"root not conforming to the profile": mutate(t, doc, func(m map[string]any) {
			m["@graph"].([]any)[0].(map[string]any)["conformsTo"] = []any{}
		}),
		"nested entity": mutate(t, doc, func(m map[string]any) {
			m["@graph"].([]any)[0].(map[string]any)["author"] = map[string]any{"@id": "#x", "name": "nested"}
		}),
	} {
		if validate(t, prc, bad) == nil {
			t.Errorf("%s: the profile schema accepts it", name)
		}
	}
	if validate(t, crate, mutate(t, doc, func(m map[string]any) { m["@context"] = "https://w3id.org/ro/crate/1.0/context" })) == nil {
		t.Error("an RO-Crate 1.0 context passes the 1.1 schema")
	}
}

// checkCrate checks what the schemas cannot: references resolve, the
// action's instrument is the SoftwareApplication, its object and result
// are the run's files with their hashes, local files exist in the crate.
func checkCrate(t *testing.T, dir string, doc []byte, rec *Record) {
	t.Helper()
	var m struct {
		Graph []map[string]any `json:"@graph"`
	}
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	byID := map[string]map[string]any{}
	for _, e := range m.Graph {
		id := e["@id"].(string)
		if byID[id] != nil {
			t.Errorf("entity %s twice", id)
		}
		byID[id] = e
	}
	isType := func(e map[string]any, typ string) bool {
		switch x := e["@type"].(type) {
		case string:
			return x == typ
		case []any:
			for _, v := range x {
				if v == typ {
					return true
				}
			}
		}
		return false
	}
	refs := func(v any) []string {
		var out []string
		switch x := v.(type) {
		case map[string]any:
			out = append(out, x["@id"].(string))
		case []any:
			for _, e := range x {
				if r, ok := e.(map[string]any); ok {
					out = append(out, r["@id"].(string))
				}
			}
		}
		return out
	}
	for _, e := range m.Graph {
		for k, v := range e {
			if k == "conformsTo" || k == "actionStatus" || k == "additionalType" {
				continue // external vocabulary
			}
			for _, id := range refs(v) {
				if byID[id] == nil {
					t.Errorf("%s.%s refers to %s, which the crate does not describe", e["@id"], k, id)
				}
			}
		}
		id := e["@id"].(string)
		if isType(e, "File") {
			if u, err := url.Parse(id); err == nil && u.Scheme == "" && !strings.HasPrefix(id, "#") {
				if _, err := os.Stat(filepath.Join(dir, id)); err != nil {
					t.Errorf("local data entity %s is not in the crate: %v", id, err)
				}
			}
		}
	}
	var action map[string]any
	for _, e := range m.Graph {
		if isType(e, "CreateAction") {
			action = e
		}
	}
	if action == nil {
		t.Fatal("no CreateAction")
	}
	if app := byID[refs(action["instrument"])[0]]; app == nil || !isType(app, "SoftwareApplication") {
		t.Errorf("instrument %v is not a SoftwareApplication", action["instrument"])
	}
	if img := byID[refs(action["containerImage"])[0]]; img == nil || img["sha256"] != strings.TrimPrefix(rec.ImageDigest, "sha256:") {
		t.Errorf("container image %v", img)
	}
	hashes := func(key string) map[string]bool {
		out := map[string]bool{}
		for _, id := range refs(action[key]) {
			if !isType(byID[id], "File") {
				t.Errorf("%s %s is not a File", key, id)
			}
			if h, ok := byID[id]["sha256"].(string); ok {
				out[h] = true
			}
		}
		return out
	}
	outs, ins := hashes("result"), hashes("object")
	for _, f := range rec.Outputs {
		if f.SHA256 != "" && !outs[f.SHA256] {
			t.Errorf("output %s (%s) is not a result of the action", f.Path, f.SHA256)
		}
	}
	for _, f := range rec.Inputs {
		if !ins[f.SHA256] {
			t.Errorf("input %s is not an object of the action", f.Path)
		}
	}
	if refs(byID["./"]["mentions"])[0] != action["@id"] {
		t.Errorf("the root does not mention the action")
	}
}

// TestExportsListPackages: the image's packages are resolved dependencies
// of the in-toto statement and software of the RO-Crate, and both still
// validate.
func TestExportsListPackages(t *testing.T) {
	rec := testRecord()
	rec.Packages = &core.Inventory{ConfigDigest: rec.ConfigDigest, Packages: []core.Package{
		{Ecosystem: "deb", Name: "bash", Version: "5.2.15-2+b2", PURL: "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64", Location: "/var/lib/dpkg/status"},
		{Ecosystem: "pypi", Name: "numpy", Version: "1.26.4", License: "BSD-3-Clause", PURL: "pkg:pypi/numpy@1.26.4", Location: "/usr/lib/python3/dist-packages/numpy-1.26.4.dist-info"},
	}}
	st, err := InToto(rec, ExportOptions{Version: "v0.test"})
	if err != nil {
		t.Fatal(err)
	}
	doc := mustMarshal(t, st)
	if err := validate(t, compileSchema(t, "intoto-statement-v1.schema.json"), doc); err != nil {
		t.Fatalf("statement does not validate: %v", err)
	}
	var uris []string
	for _, d := range st.Predicate.BuildDefinition.ResolvedDependencies {
		uris = append(uris, d.URI)
	}
	for _, p := range rec.Packages.Packages {
		if !slices.Contains(uris, p.PURL) {
			t.Errorf("resolved dependencies lack %s: %v", p.PURL, uris)
		}
	}
	files, err := ROCrate(rec, []byte("FROM x\n"), ExportOptions{Version: "v0.test"})
	if err != nil {
		t.Fatal(err)
	}
	meta := files[ROCrateMetadataFile]
	for _, schema := range []string{"ro-crate-1.1.schema.json", "process-run-crate-0.5.schema.json"} {
		if err := validate(t, compileSchema(t, schema), meta); err != nil {
			t.Fatalf("crate does not validate against %s: %v", schema, err)
		}
	}
	if !strings.Contains(string(meta), `"softwareRequirements"`) || !strings.Contains(string(meta), `"identifier": "pkg:pypi/numpy@1.26.4"`) {
		t.Errorf("crate does not list the image's software:\n%s", meta)
	}
}
