package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
)

// runsTagged returns the ids runprov runs --tag name lists.
func runsTagged(t *testing.T, store, name string) []string {
	t.Helper()
	out, _ := mustCLI(t, 0, store, "runs", "-q", "--tag", name)
	return strings.Fields(out)
}

// TestNotesAndTags: run --note and runprov tag are shown, listed, kept in
// every export, chained (fsck finds an edited tag) and left out of what a
// signature covers.
func TestNotesAndTags(t *testing.T) {
	requireRunc(t)
	dir := policyDir(t)
	rs := newRunStore(t, "FROM IMAGE\nOUTPUT /out\nCMD [\"/bin/sh\", \"-c\", \"echo x >/out/x\"]\n")
	mustCLI(t, 0, rs.dir, "key", "generate", "--out", filepath.Join(dir, "signer"))
	r, errs, code := rs.run(t, "--note", "revision 2 for the reviewers", "--sign-key", filepath.Join(dir, "signer.key"))
	if code != 0 || r == nil || r.Note != "revision 2 for the reviewers" {
		t.Fatalf("run --note: exit %d, record %+v\n%s", code, r, errs)
	}
	other, _, _ := rs.run(t)

	mustCLI(t, 0, rs.dir, "tag", "last~1", "paper-v1", "keep")
	mustCLI(t, 0, rs.dir, "tag", other.ID[:10], "keep")
	if _, errs := mustCLI(t, 0, rs.dir, "tag", r.ID, "keep"); !strings.Contains(errs, "already has tag keep") {
		t.Errorf("tagging twice: %q", errs)
	}
	if got := runsTagged(t, rs.dir, "keep"); len(got) != 2 {
		t.Errorf("runs --tag keep = %v, want both runs", got)
	}
	if got := runsTagged(t, rs.dir, "paper-v1"); len(got) != 1 || got[0] != r.ID {
		t.Errorf("runs --tag paper-v1 = %v, want [%s]", got, r.ID)
	}
	mustCLI(t, 0, rs.dir, "tag", "--rm", other.ID, "keep")
	if got := runsTagged(t, rs.dir, "keep"); len(got) != 1 || got[0] != r.ID {
		t.Errorf("after tag --rm: runs --tag keep = %v, want [%s]", got, r.ID)
	}
	if out, _ := mustCLI(t, 0, rs.dir, "tag", r.ID); strings.TrimSpace(out) != "keep paper-v1" {
		t.Errorf("tag RUN lists %q", out)
	}
	mustCLI(t, 125, rs.dir, "tag", r.ID, "bad tag")
	if _, errs := mustCLI(t, 2, rs.dir, "tag"); !strings.Contains(errs, "which run?") {
		t.Errorf("tag without a run: %q", errs)
	}

	// runs names the Runfile of each run: repository and path.
	out, _ := mustCLI(t, 0, rs.dir, "runs")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if h := strings.Fields(lines[0]); len(h) < 7 || h[5] != "REPO" || h[6] != "PATH" {
		t.Errorf("runs header %q: want REPO and PATH after CREATED", lines[0])
	}
	if len(lines) != 3 || !strings.Contains(lines[1], " default ") || !strings.Contains(lines[1], " Runfile ") {
		t.Errorf("runs does not name the repo and path:\n%s", out)
	}

	out, _ = mustCLI(t, 0, rs.dir, "show", r.ID)
	for _, want := range []string{"note         revision 2 for the reviewers", "tags         keep paper-v1"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	out, _ = mustCLI(t, 0, rs.dir, "--json", "runs", "--tag", "paper-v1")
	var listed []core.Run
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 1 || listed[0].Note == "" || len(listed[0].Tags) != 2 {
		t.Errorf("runs --json: %v\n%s", err, out)
	}
	for _, format := range []string{"intoto", "prov", "json"} {
		out, _ := mustCLI(t, 0, rs.dir, "export", r.ID, "--format", format)
		if !strings.Contains(out, "revision 2 for the reviewers") || !strings.Contains(out, "paper-v1") {
			t.Errorf("export --format %s lacks the note or a tag:\n%s", format, out)
		}
	}
	crate := filepath.Join(t.TempDir(), "crate")
	mustCLI(t, 0, rs.dir, "export", r.ID, "--format", "rocrate", "-o", crate)
	meta, err := os.ReadFile(filepath.Join(crate, "ro-crate-metadata.json"))
	if err != nil || !strings.Contains(string(meta), "revision 2 for the reviewers") || !strings.Contains(string(meta), "keep, paper-v1") {
		t.Errorf("RO-Crate lacks the note or the tags (%v):\n%s", err, meta)
	}

	// Tags came after the signature, which does not cover them.
	if out, errs := mustCLI(t, 0, rs.dir, "verify", r.ID, "--key", filepath.Join(dir, "signer.pub")); !strings.Contains(out+errs, "verified") {
		t.Errorf("verify after tagging: %s %s", out, errs)
	}

	// Every note and tag event is in the hash chain.
	fsckHolds(t, rs.dir)
	db := storeDB(t, rs.dir)
	mustExec(t, db, `UPDATE run_events SET value = 'paper-v2' WHERE value = 'paper-v1'`)
	db.Close()
	fsckFinds(t, rs.dir, "run note or tag event")
}
