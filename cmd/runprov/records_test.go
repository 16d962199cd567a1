package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/core/coretest"
	"github.com/runprov/runprov/drivers/runtime"
	"github.com/runprov/runprov/plugins/history"
)

// outputsRunfile writes two output files, one in a subdirectory.
const outputsRunfile = `FROM IMAGE
CMD ["/bin/sh", "-c", "echo a > /safe_outputs/a.txt; mkdir /safe_outputs/d; echo b > /safe_outputs/d/b.txt"]
`

// newKeyPair writes PREFIX.key and PREFIX.pub in dir and returns the prefix
// and the key id.
func newKeyPair(t *testing.T, store, dir, name string) (string, string) {
	t.Helper()
	prefix := filepath.Join(dir, name)
	out, _ := mustCLI(t, 0, store, "key", "generate", "--out", prefix)
	return prefix, strings.TrimSpace(out)
}

// independentVerify runs the Python (securesystemslib) DSSE verifier; it
// returns the payload and whether it verified.
func independentVerify(t *testing.T, envelope, pub string) (string, bool) {
	t.Helper()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import securesystemslib.signer").Run(); err != nil {
		coretest.Unavailable(t, "needs python3-securesystemslib (make deps installs it)")
	}
	script, _ := filepath.Abs("../../testdata/scripts/dsse-verify.py")
	out, err := exec.Command(py, script, envelope, pub).Output()
	return string(out), err == nil
}

func showRecord(t *testing.T, store, run string) *history.Record {
	t.Helper()
	out, _ := mustCLI(t, 0, store, "--json", "show", run)
	var rec history.Record
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatal(err)
	}
	return &rec
}

// verifyFails runs verify and wants exit 1 with every want in its output.
func verifyFails(t *testing.T, store string, wants []string, args ...string) {
	t.Helper()
	out, errs := mustCLI(t, 1, store, append([]string{"verify"}, args...)...)
	t.Logf("verify %s:\n%s", strings.Join(args, " "), out)
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("verify %s: output lacks %q:\n%s%s", strings.Join(args, " "), w, out, errs)
		}
	}
}

// TestSignedRecordVerifies: a run with --sign-key is signed by a personal
// key; its signed export verifies with an independent DSSE verifier and
// carries exactly the intoto export; verify finds each kind of tampering
// and names what changed.
func TestSignedRecordVerifies(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, outputsRunfile)
	keys := t.TempDir()
	alice, aliceID := newKeyPair(t, rs.dir, keys, "alice")
	bob, _ := newKeyPair(t, rs.dir, keys, "bob")
	outDir := filepath.Join(t.TempDir(), "out")

	r, errs, code := rs.run(t, "--no-input", "--sign-key", alice+".key", "--outputs", outDir)
	if code != 0 || r == nil {
		t.Fatalf("run --sign-key: exit %d\n%s", code, errs)
	}
	rec := showRecord(t, rs.dir, r.ID)
	if rec.Signature == nil || rec.Signature.KeyKind != core.SignerPersonal || rec.Signature.KeyID != aliceID {
		t.Fatalf("show --json signature: %+v, want personal %s", rec.Signature, aliceID)
	}
	validateJSON(t, compileCLISchema(t, runRecordSchema), mustJSON(t, rec))
	if text, _ := mustCLI(t, 0, rs.dir, "show", r.ID); !strings.Contains(text, "by a personal key, "+aliceID) {
		t.Errorf("show does not say who signed:\n%s", text)
	}

	statement, _ := mustCLI(t, 0, rs.dir, "export", r.ID, "--format", "intoto")
	envFile := filepath.Join(t.TempDir(), "run.dsse.json")
	mustCLI(t, 0, rs.dir, "export", r.ID, "--format", "intoto", "--signed", "-o", envFile)
	if payload, ok := independentVerify(t, envFile, alice+".pub"); !ok || payload != statement {
		t.Fatalf("the independent verifier: verified %t, payload equals the intoto export: %t", ok, payload == statement)
	}
	if _, ok := independentVerify(t, envFile, bob+".pub"); ok {
		t.Errorf("the independent verifier accepted another key")
	}

	mustCLI(t, 0, rs.dir, "verify", r.ID, "--key", alice+".pub")
	mustCLI(t, 0, rs.dir, "verify", r.ID, "--key", alice+".pub", "--outputs", outDir)
	mustCLI(t, 0, rs.dir, "verify", "--envelope", envFile, "--key", alice+".pub", "--outputs", outDir)
	verifyFails(t, rs.dir, []string{"no trusted key", aliceID}, r.ID)
	if _, errs := mustCLI(t, exitRunprov, rs.dir, "verify", r.ID, "--key", filepath.Join(keys, "absent.pub")); !strings.Contains(errs, "absent.pub") {
		t.Errorf("verify with a missing key file: %s", errs)
	}
	verifyFails(t, rs.dir, []string{"signature: no signature verifies with a trusted key", aliceID}, r.ID, "--key", bob+".pub")

	db := storeDB(t, rs.dir)
	t.Run("output sha256 edited in the store", func(t *testing.T) {
		mustExec(t, db, `UPDATE run_files SET sha256 = ? WHERE run_id = ? AND kind = 'output' AND path = 'a.txt'`, strings.Repeat("0", 64), r.ID)
		verifyFails(t, rs.dir, []string{"subject[/safe_outputs/a.txt].digest.sha256", strings.Repeat("0", 64)}, r.ID, "--key", alice+".pub")
		mustExec(t, db, `UPDATE run_files SET sha256 = ? WHERE run_id = ? AND kind = 'output' AND path = 'a.txt'`, sha256Hex("a\n"), r.ID)
		mustCLI(t, 0, rs.dir, "verify", r.ID, "--key", alice+".pub")
	})
	t.Run("exit code edited in the store", func(t *testing.T) {
		mustExec(t, db, `UPDATE runs SET exit_code = 3 WHERE id = ?`, r.ID)
		verifyFails(t, rs.dir, []string{"annotations.exitCode: signed 0, stored 3"}, r.ID, "--key", alice+".pub")
		mustExec(t, db, `UPDATE runs SET exit_code = 0 WHERE id = ?`, r.ID)
	})
	t.Run("payload changed in the envelope", func(t *testing.T) {
		var env map[string]any
		data, _ := os.ReadFile(envFile)
		json.Unmarshal(data, &env)
		changed := strings.Replace(statement, `"exitCode": 0`, `"exitCode": 1`, 1)
		if changed == statement {
			t.Fatal("the statement has no exitCode 0")
		}
		env["payload"] = base64.StdEncoding.EncodeToString([]byte(changed))
		bad := filepath.Join(t.TempDir(), "changed.json")
		os.WriteFile(bad, mustJSON(t, env), 0o644)
		verifyFails(t, rs.dir, []string{"not verified: envelope " + bad, "signature: no signature verifies with a trusted key"}, "--envelope", bad, "--key", alice+".pub")
		if _, ok := independentVerify(t, bad, alice+".pub"); ok {
			t.Errorf("the independent verifier accepted a changed payload")
		}
	})
	t.Run("output files changed on disk", func(t *testing.T) {
		os.WriteFile(filepath.Join(outDir, "a.txt"), []byte("A\n"), 0o644)
		os.Remove(filepath.Join(outDir, "d", "b.txt"))
		verifyFails(t, rs.dir, []string{
			"output /safe_outputs/a.txt: " + filepath.Join(outDir, "a.txt") + " has sha256 " + sha256Hex("A\n"),
			"output /safe_outputs/d/b.txt: missing (" + filepath.Join(outDir, "d", "b.txt") + ")",
		}, "--envelope", envFile, "--key", alice+".pub", "--outputs", outDir)
	})

	// reproduce --sign-key signs the new run, which names the run it
	// reproduces in what is signed.
	out, errs := mustCLI(t, 0, rs.dir, "--json", "reproduce", r.ID, "--sign-key", bob+".key")
	var rep struct{ Run string }
	json.Unmarshal([]byte(out), &rep)
	if rec := showRecord(t, rs.dir, rep.Run); rec.Signature == nil || rec.Signature.KeyKind != core.SignerPersonal {
		t.Fatalf("reproduce --sign-key: signature %+v\n%s", rec.Signature, errs)
	}
	mustCLI(t, 0, rs.dir, "verify", rep.Run, "--key", bob+".pub")
	if env, _ := mustCLI(t, 0, rs.dir, "export", rep.Run, "--format", "intoto", "--signed"); !strings.Contains(env, `"payload"`) {
		t.Errorf("export --signed of the reproduction:\n%s", env)
	}

	// A failed run without outputs is still signed, and verifies.
	f, errs, code := rs.run(t, "--no-input", "--sign-key", alice+".key", "--", "/bin/sh", "-c", "exit 3")
	if code != 3 || f == nil {
		t.Fatalf("failed run --sign-key: exit %d\n%s", code, errs)
	}
	if rec := showRecord(t, rs.dir, f.ID); rec.Signature == nil {
		t.Fatalf("the failed run is not signed")
	}
	mustCLI(t, 0, rs.dir, "verify", f.ID, "--key", alice+".pub")

	// An unsigned run says so.
	u, _, _ := rs.run(t, "--no-input")
	verifyFails(t, rs.dir, []string{"not signed"}, u.ID, "--key", alice+".pub")
	mustCLI(t, exitRunprov, rs.dir, "export", u.ID, "--format", "intoto", "--signed")
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSiteKeySignsRun: the policy's sign_key signs a run made as root,
// which show calls site-signed and verify checks with the policy's key.
func TestSiteKeySignsRun(t *testing.T) {
	requireRunc(t)
	dir := policyDir(t)
	rs := newRunStore(t, outputsRunfile)
	site, siteID := newKeyPair(t, rs.dir, dir, "site")
	writePolicy(t, filepath.Join(dir, "policy.json"), `{"sign_key": "`+site+`.key", "require_signed_records": true}`)
	r, errs, code := rs.run(t, "--no-input")
	if code != 0 || r == nil {
		t.Fatalf("run under a sign_key: exit %d\n%s", code, errs)
	}
	if text, _ := mustCLI(t, 0, rs.dir, "show", r.ID); !strings.Contains(text, "by a site key, "+siteID) {
		t.Errorf("show does not say the site signed:\n%s", text)
	}
	out, _ := mustCLI(t, 0, rs.dir, "verify", r.ID)
	if !strings.Contains(out, "signed by site key "+siteID) {
		t.Errorf("verify with the policy's key:\n%s", out)
	}
	out, _ = mustCLI(t, 0, rs.dir, "--json", "verify", r.ID)
	var rep verifyReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.Verified || rep.KeyKind != core.SignerSite || rep.KeyID != siteID || rep.Trusted != site+".key" {
		t.Errorf("verify --json: %+v %v", rep, err)
	}
}

// TestRequireSignedRecordsRefuses: a policy that requires signed records
// refuses (125) a run no key can sign, before it starts.
func TestRequireSignedRecordsRefuses(t *testing.T) {
	dir := policyDir(t)
	rs := newRunStore(t, outputsRunfile)
	writePolicy(t, filepath.Join(dir, "policy.json"), `{"require_signed_records": true}`)
	for _, args := range [][]string{
		{"--no-input"},
		{"--no-input", "--sign-key", filepath.Join(dir, "absent.key")},
	} {
		_, errs, code := rs.run(t, args...)
		if code != exitRunprov || !strings.Contains(errs, "require_signed_records") && !strings.Contains(errs, "absent.key") {
			t.Errorf("run %v: exit %d, want 125 saying why\n%s", args, code, errs)
		}
	}
	// Slurm runs are not signed yet: refused rather than left unsigned.
	if _, errs, code := rs.run(t, "--no-input", "--executor", "slurm"); code != exitRunprov || !strings.Contains(errs, "Slurm runs are not signed") {
		t.Errorf("run --executor slurm under require_signed_records: exit %d\n%s", code, errs)
	}
	if out, _ := mustCLI(t, 0, rs.dir, "--json", "runs"); strings.Contains(out, `"id"`) {
		t.Errorf("a refused run was recorded:\n%s", out)
	}
}

// TestAbortedRunSigned: a run aborted by Ctrl-C is still a record, and is
// signed; the signed statement says it was aborted.
func TestAbortedRunSigned(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, abortRunfile)
	key, _ := newKeyPair(t, rs.dir, t.TempDir(), "alice")
	cmd, stderr := helperProcess(t, rs.dir, "run", rs.commit, "--sign-key", key+".key")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rc := &runtime.Runc{Root: filepath.Join(rs.dir, "runtime", "runc")}
	var id string
	waitFor(t, 30*time.Second, func() bool {
		cs, _ := rc.List(context.Background())
		if len(cs) == 1 && cs[0].Status == "running" && strings.Contains(stderr.String(), "wrote-scratch") {
			id = filepath.Base(cs[0].Bundle) // the bundle is STORE/runs/RUN
			return true
		}
		return false
	})
	t.Cleanup(func() { cleanupContainers(t, rs.dir) }) // what a failing test leaves
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("exit %d, want 130\n%s", code, stderr)
	}
	mustCLI(t, 0, rs.dir, "verify", id, "--key", key+".pub")
	if st, _ := mustCLI(t, 0, rs.dir, "export", id, "--format", "intoto"); !strings.Contains(st, `"status": "aborted"`) {
		t.Errorf("the statement of the aborted run:\n%s", st)
	}
}
