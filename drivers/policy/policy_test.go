package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/core/coretest"
)

func TestDecodeRefusals(t *testing.T) {
	cases := map[string]string{
		`{"require_aproval": true}`:                             "unknown key",
		`{"Require_Approval": true}`:                            "unknown key",
		`{"require_approval": true, "require_approval": false}`: "given twice",
		`{"require_approval": true} {}`:                         "after the JSON object",
		`[]`:                                                    "JSON object",
		`{"require_approval": true`:                             "invalid input",
	}
	for in, want := range cases {
		if _, err := decode(strings.NewReader(in)); err == nil || !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
	values := map[string]string{
		`{"require_approval": "yes"}`:       "not true or false",
		`{"allow_weaker_sandbox": null}`:    "not true or false",
		`{"approver_keys": "/k.pub"}`:       "list of public key",
		`{"approver_keys": ["k.pub"]}`:      "absolute path",
		`{"approvals_dir": "rel"}`:          "absolute path",
		`{"approvals_dir": "/nonexistent"}`: "no such file",
	}
	for in, want := range values {
		f, err := decode(strings.NewReader(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if err := f.apply(&core.Policy{}, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}

func TestDecodeValues(t *testing.T) {
	f, err := decode(strings.NewReader(`{"require_approval": false, "allow_weaker_sandbox": true, "require_signed_records": true}`))
	if err != nil {
		t.Fatal(err)
	}
	var p core.Policy
	if err := f.apply(&p, nil); err != nil {
		t.Fatal(err)
	}
	if p.RequireApproval == nil || *p.RequireApproval || !p.AllowWeakerSandbox || !p.RequireSignedRecords {
		t.Errorf("policy %+v", p)
	}
}

// TestOpenSafe: only a file that nobody but root could have written is read.
func TestOpenSafe(t *testing.T) {
	dir := coretest.RootOwnedDir(t)
	file := filepath.Join(dir, "policy.json")
	os.WriteFile(file, []byte(`{}`), 0o644)
	if err := CheckSafe(file); err != nil {
		t.Fatalf("a root-owned 0644 file in a root-owned 0755 tree: %v", err)
	}
	link := filepath.Join(t.TempDir(), "link.json") // the link is in /tmp, its target is not
	os.Symlink(file, link)
	if err := CheckSafe(link); err != nil {
		t.Errorf("a symlink to a safe file: %v", err)
	}

	os.Chmod(file, 0o664)
	if err := CheckSafe(file); err == nil || !strings.Contains(err.Error(), "writable by group or others (mode 0664)") {
		t.Errorf("group-writable file: %v", err)
	}
	os.Chmod(file, 0o644)
	os.Chown(file, 65534, 65534)
	if err := CheckSafe(file); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("file owned by nobody: %v", err)
	}
	os.Chown(file, 0, 0)
	os.Chmod(dir, os.ModeSticky|0o777)
	if err := CheckSafe(file); err == nil || !strings.Contains(err.Error(), "mode 1777") {
		t.Errorf("a sticky world-writable directory above: %v", err)
	}
	os.Chmod(dir, 0o755)

	inTmp := filepath.Join(t.TempDir(), "policy.json")
	os.WriteFile(inTmp, []byte(`{}`), 0o644)
	if err := CheckSafe(inTmp); err == nil {
		t.Error("a policy under /tmp was accepted")
	}
}

// TestLoad: no policy when the default is absent; RUNPROV_POLICY cannot
// replace a site policy that exists.
func TestLoad(t *testing.T) {
	dir := coretest.RootOwnedDir(t)
	site, other := filepath.Join(dir, "site.json"), filepath.Join(dir, "other.json")
	os.WriteFile(other, []byte(`{"allow_weaker_sandbox": true}`), 0o644)
	p, err := Load(site, "", nil)
	if err != nil || p.Active() {
		t.Fatalf("absent default: %+v %v, want no policy", p, err)
	}
	if p, err = Load(site, other, nil); err != nil || p.Path != other || !p.AllowWeakerSandbox {
		t.Fatalf("env policy: %+v %v", p, err)
	}
	os.WriteFile(site, []byte(`{"require_approval": true}`), 0o644)
	if p, err = Load(site, "", nil); err != nil || p.Path != site {
		t.Fatalf("default policy: %+v %v", p, err)
	}
	if _, err = Load(site, other, nil); !errors.Is(err, core.ErrPolicy) || !strings.Contains(err.Error(), "cannot be replaced") {
		t.Errorf("env policy beside a site policy: %v", err)
	}
	if p, err = Load(site, site, nil); err != nil || p.Path != site {
		t.Errorf("env naming the site policy itself: %+v %v", p, err)
	}
	if _, err = Load(site, filepath.Join(dir, "missing.json"), nil); !errors.Is(err, core.ErrPolicy) {
		t.Errorf("env naming a missing file: %v", err)
	}
}

// TestReleaseValues: release settings decode with their checks; defaults
// fill what the file leaves out.
func TestReleaseValues(t *testing.T) {
	f, err := decode(strings.NewReader(`{"release_reviews_required": 3, "release_max_bytes": 1024, "release_allowed_types": [".CSV", "txt"], "release_forbidden_columns": ["*Patient*"], "release_min_count": 5}`))
	if err != nil {
		t.Fatal(err)
	}
	var p core.Policy
	if err := f.apply(&p, nil); err != nil {
		t.Fatal(err)
	}
	r := p.Release()
	if r.ReviewsRequired != 3 || r.MaxBytes != 1024 || strings.Join(r.Types, ",") != "csv,txt" || r.ForbiddenColumns[0] != "*patient*" ||
		r.MinCount != 5 || r.MaxRows != core.DefaultReleaseMaxRows || len(r.CountColumns) == 0 {
		t.Errorf("release rules %+v", r)
	}
	if d := (&core.Policy{}).Release(); d.ReviewsRequired != 2 || d.MaxBytes != 16<<20 || d.MinCount != 10 {
		t.Errorf("defaults %+v", d)
	}
	for in, want := range map[string]string{
		`{"release_reviews_required": 0}`:          "at least 1",
		`{"release_max_bytes": "16M"}`:             "whole number",
		`{"release_allowed_types": "csv"}`:         "list of file name extensions",
		`{"release_forbidden_columns": ["[a"]}`:    "pattern",
		`{"release_dir": "/nonexistent-release"}`:  "no such file",
		`{"output_checker_keys": ["checker.pub"]}`: "absolute path",
	} {
		f, err := decode(strings.NewReader(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if err := f.apply(&core.Policy{}, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}
