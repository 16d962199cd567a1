package main

import (
	"encoding/json"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/core/coretest"
)

// policyDir makes a root-owned 0755 directory tree for policy files (not
// under /tmp: a world-writable directory above a policy makes it untrusted)
// and points runprov's site policy at an absent file in it, so that only
// RUNPROV_POLICY applies.
func policyDir(t *testing.T) string {
	t.Helper()
	dir := coretest.RootOwnedDir(t)
	old := sitePolicyPath
	sitePolicyPath = filepath.Join(dir, "absent-site-policy.json")
	t.Cleanup(func() { sitePolicyPath = old })
	return dir
}

// writePolicy writes a root-owned 0644 policy file and sets RUNPROV_POLICY to it.
func writePolicy(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RUNPROV_POLICY", path)
}

// ordinaryUID is the uid of the rootless tests' user, or nobody's.
func ordinaryUID(t *testing.T) int {
	if u, err := user.Lookup(rootlessUser); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		return uid
	}
	return 65534
}

// TestPolicyRefusedUnlessOnlyRootCanChangeIt: a policy file anyone but
// root could have written stops every command that opens a store (exit
// 125, saying why), as does one with a key runprov does not know.
func TestPolicyRefusedUnlessOnlyRootCanChangeIt(t *testing.T) {
	dir := policyDir(t)
	store := newCLIStore(t)
	path := filepath.Join(dir, "policy.json")
	writePolicy(t, path, `{"require_approval": true}`)
	mustCLI(t, 0, store, "runs")

	check := func(name, want string) {
		t.Helper()
		for _, args := range [][]string{{"runs"}, {"init"}, {"policy", "show"}} {
			_, errs := mustCLI(t, exitRunprov, store, args...)
			if !strings.Contains(errs, "site policy") || !strings.Contains(errs, want) {
				t.Errorf("%s: runprov %s: stderr lacks %q:\n%s", name, args[0], want, errs)
			}
		}
	}
	os.Chmod(path, 0o664)
	check("group-writable file", "writable by group or others (mode 0664)")
	os.Chmod(path, 0o644)

	os.Chmod(dir, 0o775)
	check("group-writable directory", dir+" is writable by group or others (mode 0775)")
	os.Chmod(dir, 0o755)

	uid := ordinaryUID(t)
	os.Chown(path, uid, uid)
	check("owned by an ordinary user", "owned by uid "+strconv.Itoa(uid))
	os.Chown(path, 0, 0)

	inTmp := filepath.Join(t.TempDir(), "policy.json")
	writePolicy(t, inTmp, `{}`)
	check("under /tmp", "writable by group or others")

	writePolicy(t, path, `{"require_approval": true, "allow_weaker_sandox": true}`)
	check("unknown key", `unknown key "allow_weaker_sandox"`)
	writePolicy(t, path, `{"approver_keys": ["/nonexistent/steward.pub"]}`)
	check("missing approver key", "/nonexistent/steward.pub")

	writePolicy(t, path, `{"require_approval": true}`)
	mustCLI(t, 0, store, "runs")
}

// TestPolicyRequireApprovalOutranksConfig: the store's require-approval
// may not be set against the policy's, and policy show says which holds.
func TestPolicyRequireApprovalOutranksConfig(t *testing.T) {
	dir := policyDir(t)
	store := newCLIStore(t) // require-approval=false
	path := filepath.Join(dir, "policy.json")
	writePolicy(t, path, `{"require_approval": true}`)

	_, errs := mustCLI(t, exitRunprov, store, "config", core.SettingRequireApproval, "false")
	if !strings.Contains(errs, path) || !strings.Contains(errs, "require_approval is true") {
		t.Errorf("config require-approval false under the policy: stderr %q", errs)
	}
	mustCLI(t, 0, store, "config", core.SettingRequireApproval, "true")
	got := policyShow(t, store)
	if s := got.Settings["require_approval"]; s.Value != true || s.Source != path {
		t.Errorf("require_approval: %+v, want true from %s", s, path)
	}

	writePolicy(t, path, `{"require_approval": false}`)
	if _, errs := mustCLI(t, exitRunprov, store, "config", core.SettingRequireApproval, "true"); !strings.Contains(errs, path) {
		t.Errorf("config require-approval true under a policy saying false: stderr %q", errs)
	}
	// Silent on require_approval: the store decides.
	writePolicy(t, path, `{}`)
	if s := policyShow(t, store).Settings["require_approval"]; s.Value != true || s.Source != "store config require-approval" {
		t.Errorf("require_approval without it in the policy: %+v", s)
	}
}

type policyShowJSON struct {
	Policy   string `json:"policy"`
	Settings map[string]struct {
		Value  any    `json:"value"`
		Source string `json:"source"`
	} `json:"settings"`
}

func policyShow(t *testing.T, store string) policyShowJSON {
	t.Helper()
	out, _ := mustCLI(t, 0, store, "--json", "policy", "show")
	var got policyShowJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("policy show --json: %v\n%s", err, out)
	}
	return got
}

// TestPolicyShow: every setting with its value and source, in text and
// JSON; the key files a policy names are checked and shown with their ids.
func TestPolicyShow(t *testing.T) {
	dir := policyDir(t)
	store := newCLIStore(t)
	got := policyShow(t, store)
	if got.Policy != "" || got.Settings["allow_weaker_sandbox"].Value != true || got.Settings["require_approval"].Source != "store config require-approval" {
		t.Errorf("no policy: %+v", got)
	}

	out, _ := mustCLI(t, 0, store, "key", "generate", "--out", filepath.Join(dir, "steward"))
	stewardID := strings.TrimSpace(out)
	mustCLI(t, 0, store, "key", "generate", "--out", filepath.Join(dir, "signer"))
	os.Mkdir(filepath.Join(dir, "approvals"), 0o755)
	path := filepath.Join(dir, "policy.json")
	writePolicy(t, path, `{
		"require_approval": true,
		"approver_keys": ["`+dir+`/steward.pub"],
		"approvals_dir": "`+dir+`/approvals",
		"sign_key": "`+dir+`/signer.key",
		"require_signed_records": true
	}`)
	text, _ := mustCLI(t, 0, store, "policy", "show")
	for _, want := range []string{
		"site policy: " + path,
		"approver_keys           " + dir + "/steward.pub (id " + stewardID + ")  " + path,
		"allow_weaker_sandbox    false",
		"default under the site policy",
	} {
		// Columns are aligned to the widest value: compare words.
		if !strings.Contains(strings.Join(strings.Fields(text), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("policy show lacks %q:\n%s", want, text)
		}
	}
	got = policyShow(t, store)
	keys, _ := got.Settings["approver_keys"].Value.([]any)
	if got.Policy != path || len(keys) != 1 || keys[0].(map[string]any)["id"] != stewardID ||
		got.Settings["sign_key"].Value != dir+"/signer.key" || got.Settings["require_signed_records"].Value != true ||
		got.Settings["allow_weaker_sandbox"].Value != false || got.Settings["approvals_dir"].Source != path {
		t.Errorf("policy show --json: %+v", got)
	}

	// A private key named as an approver's public key is a mistake.
	writePolicy(t, path, `{"approver_keys": ["`+dir+`/signer.key"]}`)
	mustCLI(t, exitRunprov, store, "policy", "show")
}

// TestPolicyForbidsWeakerSandbox: under a policy, --allow-weaker-sandbox is
// refused before anything runs unless the policy allows it.
func TestPolicyForbidsWeakerSandbox(t *testing.T) {
	dir := policyDir(t)
	store := newCLIStore(t)
	path := filepath.Join(dir, "policy.json")
	writePolicy(t, path, `{"require_approval": false}`)
	_, errs := mustCLI(t, exitRunprov, store, "run", "HEAD", "--allow-weaker-sandbox")
	if !strings.Contains(errs, path) || !strings.Contains(errs, "allow_weaker_sandbox is false") {
		t.Errorf("run --allow-weaker-sandbox: stderr %q", errs)
	}
	writePolicy(t, path, `{"allow_weaker_sandbox": true}`)
	// Allowed: the run goes on, to fail on the commit this store lacks.
	if _, errs := mustCLI(t, exitRunprov, store, "run", "HEAD", "--allow-weaker-sandbox"); strings.Contains(errs, "site policy") {
		t.Errorf("run --allow-weaker-sandbox allowed by the policy: stderr %q", errs)
	}
}

// TestPolicyRunRequiresApproval: an unapproved image is refused under a
// policy that requires approval although the store's config does not;
// once approved it runs.
func TestPolicyRunRequiresApproval(t *testing.T) {
	requireRunc(t)
	dir := policyDir(t)
	rs := newRunStore(t, echoRunfile) // require-approval=false
	path := filepath.Join(dir, "policy.json")
	writePolicy(t, path, `{"require_approval": true}`)

	r, errs, code := rs.run(t, "--no-input")
	if code != exitRunprov || r != nil || runCount(t, rs.dir) != 0 {
		t.Fatalf("unapproved image under the policy: exit %d, record %+v\n%s", code, r, errs)
	}
	for _, want := range []string{"not approved", "the site policy " + path + " requires approval", "runprov image approve"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if out, _ := mustCLI(t, 0, rs.dir, "config", core.SettingRequireApproval); strings.TrimSpace(out) != "false" {
		t.Errorf("store config require-approval: %s, want false", out)
	}
	mustCLI(t, 0, rs.dir, "image", "approve", rs.image, "--note", "test")
	if r, errs, code := rs.run(t, "--no-input"); code != 0 || r == nil || r.Status != core.RunSucceeded {
		t.Fatalf("approved image: exit %d\n%s", code, errs)
	}
}
