package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
)

// approvalPolicy writes a policy naming a steward key (made in the
// root-owned policy directory) as the only approver, with an approvals_dir,
// and returns the directory, the steward's key prefix and key id.
func approvalPolicy(t *testing.T, store string) (dir, steward, stewardID string) {
	t.Helper()
	dir = policyDir(t)
	steward, stewardID = newKeyPair(t, store, dir, "steward")
	if err := os.Mkdir(filepath.Join(dir, "approvals"), 0o755); err != nil {
		t.Fatal(err)
	}
	writePolicy(t, filepath.Join(dir, "policy.json"), `{"approver_keys": ["`+steward+`.pub"], "approvals_dir": "`+dir+`/approvals"}`)
	return dir, steward, stewardID
}

// refused runs rs and wants exit 125, no run recorded and every want in
// the message.
func refused(t *testing.T, rs *runStore, wants ...string) {
	t.Helper()
	r, errs, code := rs.run(t, "--no-input")
	if code != exitRunprov || r != nil || runCount(t, rs.dir) != 0 {
		t.Fatalf("want refusal (125): exit %d, record %+v\n%s", code, r, errs)
	}
	for _, want := range append(wants, "not approved", "runprov image approve") {
		if !strings.Contains(errs, want) {
			t.Errorf("refusal lacks %q:\n%s", want, errs)
		}
	}
}

// TestSignedApprovalRefusals: under a policy with approver_keys, run refuses
// an image never approved, approved unsigned (config cannot lift it),
// approved by an untrusted key, or whose only approval expired, each saying
// so; an approval in approvals_dir admits it and the run names it; a later
// signed revocation refuses it again with its date and note.
func TestSignedApprovalRefusals(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, echoRunfile)
	dir, steward, stewardID := approvalPolicy(t, rs.dir)

	refused(t, rs, "never approved")
	mustCLI(t, 0, rs.dir, "config", core.SettingRequireApproval, "false")
	refused(t, rs, "never approved")

	mustCLI(t, 0, rs.dir, "image", "approve", rs.image, "--note", "unsigned")
	refused(t, rs, "(unsigned)")

	other, otherID := newKeyPair(t, rs.dir, t.TempDir(), "analyst")
	mustCLI(t, 0, rs.dir, "image", "approve", rs.image, "--key", other+".key", "--note", "mine")
	refused(t, rs, "untrusted key", otherID)

	mustCLI(t, 0, rs.dir, "image", "approve", rs.image, "--key", steward+".key", "--note", "old", "--expires", "2020-01-02")
	refused(t, rs, "expired on 2020-01-02")
	if !imageApproved(t, rs.dir) {
		t.Error("image ls says not approved after a signed approval")
	}

	// Signed in another store, kept only in approvals_dir.
	other2 := newCLIStore(t)
	lay, _ := busyboxLayout(t)
	mustCLI(t, 0, other2, "image", "import", lay)
	file := filepath.Join(dir, "approvals", "busybox.json")
	mustCLI(t, 0, other2, "image", "approve", rs.image, "--key", steward+".key", "--note", "reviewed T-1", "-o", file)
	r, errs, code := rs.run(t, "--no-input")
	if code != 0 || r == nil || r.Status != core.RunSucceeded {
		t.Fatalf("approved in approvals_dir: exit %d\n%s", code, errs)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(string(data))))
	want := core.RunApproval{KeyID: stewardID, SHA256: hex.EncodeToString(sum[:])}
	if got := showRecord(t, rs.dir, r.ID).Run.Approval; got == nil || *got != want {
		t.Errorf("run approval %+v, want %+v", got, want)
	}
	if text, _ := mustCLI(t, 0, rs.dir, "show", r.ID); !strings.Contains(text, want.SHA256) {
		t.Errorf("show lacks the approval envelope sha256:\n%s", text)
	}

	time.Sleep(1100 * time.Millisecond) // the revocation must be later than the approval
	mustCLI(t, 0, rs.dir, "image", "revoke", rs.image, "--key", steward+".key", "--note", "CVE found")
	_, errs, code = rs.run(t, "--no-input")
	day := time.Now().UTC().Format(time.DateOnly)
	if code != exitRunprov || !strings.Contains(errs, "revoked on "+day) || !strings.Contains(errs, "CVE found") {
		t.Errorf("revoked: exit %d\n%s", code, errs)
	}

	if imageApproved(t, rs.dir) {
		t.Error("image ls says approved after a signed revocation")
	}

	out, _ := mustCLI(t, 0, rs.dir, "--json", "image", "approvals", rs.image)
	for _, w := range []string{`"source": "` + file + `"`, `"revoke": true`, `"verified": false`, `"key_id": "` + otherID + `"`} {
		if !strings.Contains(out, w) {
			t.Errorf("image approvals --json lacks %s:\n%s", w, out)
		}
	}
}

// imageApproved reports what image ls --json says of the store's one image.
func imageApproved(t *testing.T, store string) bool {
	t.Helper()
	out, _ := mustCLI(t, 0, store, "--json", "image", "ls")
	var imgs []struct {
		Approved bool `json:"approved"`
	}
	if err := json.Unmarshal([]byte(out), &imgs); err != nil || len(imgs) != 1 {
		t.Fatalf("image ls --json: %v, %d images\n%s", err, len(imgs), out)
	}
	return imgs[0].Approved
}

// TestFsckSignedApprovals: fsck holds with signed approvals stored, and
// names an approval envelope edited or inserted without runprov.
func TestFsckSignedApprovals(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, echoRunfile)
	_, steward, _ := approvalPolicy(t, rs.dir)
	mustCLI(t, 0, rs.dir, "image", "approve", rs.image, "--key", steward+".key", "--note", "reviewed")
	fsckHolds(t, rs.dir)

	db := storeDB(t, rs.dir)
	mustExec(t, db, `UPDATE image_approvals SET envelope = replace(envelope, '"payload"', ' "payload"')`)
	fsckFinds(t, rs.dir, "signed approval 1 of "+rs.image, "its envelope was edited")

	mustExec(t, db, `INSERT INTO image_approvals(digest, kind, key_id, sha256, envelope, at)
		SELECT digest, kind, key_id, 'feed', envelope, at FROM image_approvals`)
	fsckFinds(t, rs.dir, "signed approval 2 of "+rs.image, "no image event names it")
}

// TestSignedApprovalIndependentlyVerified: the envelope approve -o writes
// verifies with the public key in the Python DSSE verifier, and its payload
// is an in-toto statement about the image digest.
func TestSignedApprovalIndependentlyVerified(t *testing.T) {
	store := newCLIStore(t)
	lay, d := busyboxLayout(t)
	mustCLI(t, 0, store, "image", "import", lay)
	prefix, id := newKeyPair(t, store, t.TempDir(), "steward")
	file := filepath.Join(t.TempDir(), "a.json")
	mustCLI(t, 0, store, "image", "approve", d, "--key", prefix+".key", "--note", "ok", "--expires", "2099-01-01", "-o", file)
	payload, ok := independentVerify(t, file, prefix+".pub")
	if !ok {
		t.Fatalf("the independent verifier rejects the approval:\n%s", payload)
	}
	for _, w := range []string{`"_type":"https://in-toto.io/Statement/v1"`, `"sha256":"` + strings.TrimPrefix(d, "sha256:") + `"`,
		`"predicateType":"https://runprov.dev/approval/v1"`, `"approver_key_id":"` + id + `"`, `"expires":"2099-01-01T00:00:00Z"`} {
		if !strings.Contains(payload, w) {
			t.Errorf("payload lacks %s:\n%s", w, payload)
		}
	}
	if _, ok := independentVerify(t, file, newPub(t, store)); ok {
		t.Error("the independent verifier accepts the approval with another key")
	}
}

func newPub(t *testing.T, store string) string {
	p, _ := newKeyPair(t, store, t.TempDir(), "other")
	return p + ".pub"
}

// TestRootlessCannotRunUnapprovedImage: an ordinary user, under a policy
// that counts only the steward's signed approvals, cannot make an
// unapproved image run with any runprov command.
func TestRootlessCannotRunUnapprovedImage(t *testing.T) {
	rl := newRootless(t)
	dir := policyDir(t)
	steward, _ := newKeyPair(t, rl.store, dir, "steward")
	writePolicy(t, filepath.Join(dir, "policy.json"), `{"approver_keys": ["`+steward+`.pub"]}`)
	rf := filepath.Join(rl.base, "Runfile")
	os.WriteFile(rf, []byte(strings.ReplaceAll(echoRunfile, "IMAGE", "busybox@"+rl.digest)), 0o644)
	rl.chown(t, rl.base)
	commit := strings.TrimSpace(rl.as(0, "-q", "add", rf))
	check := func(what string, args ...string) {
		t.Helper()
		if errs := rl.as(exitRunprov, append([]string{"run", commit}, args...)...); !strings.Contains(errs, "not approved") {
			t.Errorf("%s: the refusal does not say not approved:\n%s", what, errs)
		}
	}
	check("no approval")
	rl.as(exitRunprov, "image", "approve", rl.digest, "--key", steward+".key", "--note", "steal") // the steward's key is not theirs to read
	rl.as(0, "key", "generate", "--out", filepath.Join(rl.base, "mine"))
	rl.as(0, "image", "approve", rl.digest, "--key", filepath.Join(rl.base, "mine.key"), "--note", "self")
	check("own key")
	rl.as(0, "image", "approve", rl.digest, "--note", "unsigned")
	check("unsigned")
	rl.as(0, "config", core.SettingRequireApproval, "false")
	check("config off")
	rl.as(exitRunprov, "run", commit, "--allow-weaker-sandbox")
	if out := rl.as(0, "query", "--csv", "SELECT count(*) FROM runs"); !strings.HasSuffix(strings.TrimSpace(out), "\n0") {
		t.Errorf("an unapproved run was recorded: %s", out)
	}
}
