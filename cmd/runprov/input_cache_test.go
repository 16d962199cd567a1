package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/producer"
)

const readInputRunfile = `FROM IMAGE
INPUT data /data
CMD ["/bin/sh", "-c", "cat /data/* > /dev/null"]
`

// inputCacheFiles is the content of each file of the input directory;
// the name says what the test does to it after the first runs.
var inputCacheFiles = map[string]string{
	"unchanged": "left as it is\n",
	"append":    "short\n",
	"samesize":  "same size AAAA\n",
	"truncate":  "to be truncated\n",
	"replace":   "replaced by rename\n",
	"chmod":     "only the mode changes\n",
	"touchback": "rewritten, mtime set back\n",
}

// changeInputs changes every file of dir but "unchanged", one way each,
// and returns the content each file has now.
func changeInputs(t *testing.T, dir string) map[string]string {
	t.Helper()
	p := func(n string) string { return filepath.Join(dir, n) }
	now := map[string]string{"unchanged": inputCacheFiles["unchanged"], "chmod": inputCacheFiles["chmod"]}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(p("append"), os.O_APPEND|os.O_WRONLY, 0)
	must(err)
	_, err = f.WriteString("more\n")
	must(err)
	must(f.Close())
	now["append"] = inputCacheFiles["append"] + "more\n"

	now["samesize"] = "same size BBBB\n" // same length, written in place
	f, err = os.OpenFile(p("samesize"), os.O_WRONLY, 0)
	must(err)
	_, err = f.WriteAt([]byte(now["samesize"]), 0)
	must(err)
	must(f.Close())

	must(os.Truncate(p("truncate"), 5))
	now["truncate"] = inputCacheFiles["truncate"][:5]

	now["replace"] = "REPLACED by rename\n" // same size, a new inode
	must(os.WriteFile(p(".new"), []byte(now["replace"]), 0o644))
	must(os.Rename(p(".new"), p("replace")))

	must(os.Chmod(p("chmod"), 0o640))

	fi, err := os.Stat(p("touchback"))
	must(err)
	now["touchback"] = "REWRITTEN, mtime set back\n"
	must(os.WriteFile(p("touchback"), []byte(now["touchback"]), 0o644))
	must(os.Chtimes(p("touchback"), fi.ModTime(), fi.ModTime()))
	return now
}

// inputsByPath indexes a run's input manifest.
func inputsByPath(r *core.Run) map[string]core.FileRecord {
	m := map[string]core.FileRecord{}
	for _, f := range r.Inputs {
		m[f.Path] = f
	}
	return m
}

// TestInputCache: a run takes the sha256 of an input file from the input
// cache only while its fingerprint is unchanged: appending, writing in
// place at the same size, truncating, replacing by rename, chmod and a
// write with the mtime set back each make the next run read the file
// again; run --rehash and reproduce always read everything. The record
// (run --json, show, show --json) says which files came from the cache,
// how many, and when the oldest hash was made. A forged cache entry shows
// which runs used the cache: only they record the forged sha256.
func TestInputCache(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, readInputRunfile)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, c := range inputCacheFiles {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Files changed within RacyWindow of their hash get no fingerprint.
	time.Sleep(producer.RacyWindow + 100*time.Millisecond)

	run := func(what string, args ...string) *core.Run {
		t.Helper()
		r, errs, code := rs.run(t, append([]string{"--input", "data=" + dir}, args...)...)
		if code != 0 || r == nil || r.Status != core.RunSucceeded {
			t.Fatalf("%s: exit %d\n%s", what, code, errs)
		}
		if len(r.Inputs) != len(inputCacheFiles) {
			t.Fatalf("%s: %d input files, want %d: %+v", what, len(r.Inputs), len(inputCacheFiles), r.Inputs)
		}
		return r
	}
	wantFiles := func(what string, r *core.Run, content map[string]string, cached ...string) {
		t.Helper()
		isCached := map[string]bool{}
		for _, n := range cached {
			isCached[n] = true
		}
		for n, f := range inputsByPath(r) {
			if got, want := !f.CachedAt.IsZero(), isCached[n]; got != want {
				t.Errorf("%s: %s from the cache: %v, want %v", what, n, got, want)
			}
			if f.SHA256 != sha256Hex(content[n]) {
				t.Errorf("%s: %s has sha256 %s, want that of %q", what, n, f.SHA256, content[n])
			}
		}
		if r.InputsCached != len(cached) {
			t.Errorf("%s: inputs_cached %d, want %d", what, r.InputsCached, len(cached))
		}
	}
	all := make([]string, 0, len(inputCacheFiles))
	for n := range inputCacheFiles {
		all = append(all, n)
	}

	r1 := run("first run")
	wantFiles("first run", r1, inputCacheFiles)
	if !r1.InputsHashedAt.IsZero() {
		t.Errorf("first run: inputs hashed at %s, want none from the cache", r1.InputsHashedAt)
	}
	r2 := run("second run")
	wantFiles("second run", r2, inputCacheFiles, all...)
	if r2.InputsHashedAt.Before(r1.Created) || !r2.InputsHashedAt.Before(r2.Created) {
		t.Errorf("second run: inputs hashed at %s, want during the first run (%s to %s)", r2.InputsHashedAt, r1.Created, r2.Created)
	}

	// The record as stored says the same.
	show := showJSON(t, rs.dir, r2.ID)
	if show["inputs_cached"] != float64(len(all)) || show["inputs_hashed_at"] == nil {
		t.Errorf("show --json: inputs_cached %v, inputs_hashed_at %v", show["inputs_cached"], show["inputs_hashed_at"])
	}
	out, _ := mustCLI(t, 0, rs.dir, "--json", "show", r2.ID)
	validateJSON(t, compileCLISchema(t, runRecordSchema), []byte(out))
	stored := &showRecord(t, rs.dir, r2.ID).Run
	wantFiles("show --json of the second run", stored, inputCacheFiles, all...)
	text, _ := mustCLI(t, 0, rs.dir, "show", r2.ID)
	if !strings.Contains(text, "7 of 7 input files unchanged since hashed") || strings.Count(text, "(cached)") != 7 {
		t.Errorf("show does not say the inputs came from the cache:\n%s", text)
	}
	text, _ = mustCLI(t, 0, rs.dir, "show", r1.ID)
	if !strings.Contains(text, "all 7 input files read in full") || strings.Contains(text, "(cached)") {
		t.Errorf("show of the first run:\n%s", text)
	}

	// A forged entry is believed while the fingerprint matches: this is
	// how the test sees the cache used, and that --rehash and reproduce
	// do not use it.
	forged := strings.Repeat("0", 64)
	forge := func() {
		t.Helper()
		mustExec(t, storeDB(t, rs.dir), `UPDATE input_fingerprints SET sha256 = ? WHERE path = ?`, forged, filepath.Join(dir, "unchanged"))
	}
	forge()
	r3 := run("run over a forged entry")
	if got := inputsByPath(r3)["unchanged"].SHA256; got != forged {
		t.Fatalf("run over a forged cache entry recorded %s: the cache was not used", got)
	}
	r4 := run("run --rehash", "--rehash")
	wantFiles("run --rehash", r4, inputCacheFiles)
	if !r4.InputsHashedAt.IsZero() {
		t.Errorf("run --rehash: inputs hashed at %s, want none from the cache", r4.InputsHashedAt)
	}
	// --rehash refreshed the cache with the true sha256.
	wantFiles("after --rehash", run("after --rehash"), inputCacheFiles, all...)

	forge()
	mustCLI(t, 0, rs.dir, "reproduce", r2.ID)
	rep := &showRecord(t, rs.dir, newestRun(t, rs.dir).ID).Run
	if rep.ReproduceOf != r2.ID {
		t.Fatalf("newest run is not the reproduction: %+v", rep)
	}
	wantFiles("reproduce", rep, inputCacheFiles)

	now := changeInputs(t, dir)
	r5 := run("run after the changes")
	wantFiles("run after the changes", r5, now, "unchanged")
}
