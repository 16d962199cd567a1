package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/runprov/runprov/core/coretest"
)

// osAccount is another OS user running this test binary as runprov, with
// a directory of its own.
type osAccount struct {
	name     string
	uid, gid int
	base     string
	exe      string
	store    string // "" for a checker: it has no access to the analyst's store
}

// newAccount creates (once) the OS user name, and a directory it owns.
func newAccount(t *testing.T, name, exe string) *osAccount {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		if out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/sh", name).CombinedOutput(); err != nil {
			t.Fatalf("useradd: %v: %s", err, out)
		}
		if u, err = user.Lookup(name); err != nil {
			t.Fatal(err)
		}
	}
	acc := &osAccount{name: name, exe: exe}
	acc.uid, _ = strconv.Atoi(u.Uid)
	acc.gid, _ = strconv.Atoi(u.Gid)
	if acc.base, err = os.MkdirTemp("", "runprov-"+name+"-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(acc.base) })
	os.Chmod(acc.base, 0o755)
	os.Chown(acc.base, acc.uid, acc.gid)
	return acc
}

// run runs runprov args as the account, wants exit status want, and
// returns stdout and stderr.
func (acc *osAccount) run(t *testing.T, want int, args ...string) (string, string) {
	t.Helper()
	if acc.store != "" {
		args = append([]string{"--store", acc.store}, args...)
	}
	cmd := exec.Command(acc.exe, "-test.run=^TestRunHelperProcess$")
	argsJSON, _ := json.Marshal(args)
	cmd.Env = []string{"RUNPROV_HELPER_ARGS=" + string(argsJSON), "HOME=" + acc.base, "USER=" + acc.name, "PATH=" + os.Getenv("PATH"),
		"RUNPROV_POLICY=" + os.Getenv("RUNPROV_POLICY")}
	cmd.Dir = acc.base
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(acc.uid), Gid: uint32(acc.gid)}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Run()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != want {
		t.Fatalf("runprov %s as %s: exit %v, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), acc.name, cmd.ProcessState, want, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String()
}

// refusedWith runs args as acc, wants exit 125 and every want in stderr.
func (acc *osAccount) refusedWith(t *testing.T, wants []string, args ...string) {
	t.Helper()
	_, errs := acc.run(t, exitRunprov, args...)
	for _, w := range wants {
		if !strings.Contains(errs, w) {
			t.Errorf("runprov %s: the refusal lacks %q:\n%s", strings.Join(args, " "), w, errs)
		}
	}
}

// key makes a key pair in the account's directory, owned by it.
func (acc *osAccount) key(t *testing.T, name string) (prefix, id string) {
	t.Helper()
	out, _ := acc.run(t, 0, "key", "generate", "--out", filepath.Join(acc.base, name))
	return filepath.Join(acc.base, name), strings.TrimSpace(out)
}

// releaseRunfile's run leaves files for every pre-check in a moderate
// output, and one file in a high one.
const releaseRunfile = `FROM busybox@DIGEST
OUTPUT /out sensitivity=moderate
OUTPUT /secret
CMD ["/bin/sh", "-c", "printf 'region,n\\nnorth,120\\nsouth,45\\n' > /out/table.csv; printf 'region,count\\neast,3\\nwest,40\\n' > /out/small.csv; printf 'patient_id,age\\n1,40\\n' > /out/ids.csv; echo x > /out/model.bin; head -c 17000000 /dev/zero > /out/big.txt; echo raw > /secret/raw.csv"]
`

// releaseSite is an analyst who has run releaseRunfile, two output
// checkers, and a policy naming the spool and the three people's keys.
type releaseSite struct {
	analyst, ck1, ck2 *osAccount
	akey, k1, k2      string // key prefixes
	spool             string
}

func newReleaseSite(t *testing.T) *releaseSite {
	t.Helper()
	rl := newRootless(t)
	coretest.RequireBinary(t, "useradd")
	s := &releaseSite{analyst: &osAccount{name: rootlessUser, uid: rl.uid, gid: rl.gid, base: rl.base, exe: rl.exe, store: rl.store}}
	s.ck1, s.ck2 = newAccount(t, "runprovchk1", rl.exe), newAccount(t, "runprovchk2", rl.exe)
	dir := policyDir(t)
	s.spool = filepath.Join(dir, "spool")
	os.Mkdir(s.spool, 0o755)
	os.Chmod(s.spool, os.ModeSticky|0o777)
	var pubs []string
	for _, k := range []struct {
		acc  *osAccount
		name string
		out  *string
	}{{s.analyst, "analyst", &s.akey}, {s.ck1, "checker1", &s.k1}, {s.ck2, "checker2", &s.k2}} {
		*k.out, _ = k.acc.key(t, k.name)
		data, err := os.ReadFile(*k.out + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		pub := filepath.Join(dir, k.name+".pub")
		os.WriteFile(pub, data, 0o644)
		pubs = append(pubs, `"`+pub+`"`)
	}
	writePolicy(t, filepath.Join(dir, "policy.json"), `{"release_dir": "`+s.spool+`", "output_checker_keys": [`+strings.Join(pubs, ", ")+`]}`)
	rf := filepath.Join(rl.base, "Runfile")
	os.WriteFile(rf, []byte(strings.ReplaceAll(releaseRunfile, "DIGEST", rl.digest)), 0o644)
	rl.chown(t, rf)
	commit := strings.TrimSpace(rl.as(0, "-q", "add", rf))
	rl.as(0, "run", commit, "--sign-key", s.akey+".key")
	return s
}

// TestReleaseThreeUsers: an analyst requests files of a signed run, two
// output checkers (other OS users, without the analyst's store) approve
// them, and the export's envelope verifies with an independent DSSE
// implementation, names exactly the exported files, and its RO-Crate
// validates. Each refusal exits 125 saying why; editing or deleting a log
// entry or a vote makes release verify fail.
func TestReleaseThreeUsers(t *testing.T) {
	s := newReleaseSite(t)
	an, ck1, ck2 := s.analyst, s.ck1, s.ck2

	out, _ := an.run(t, 0, "--json", "show", "last")
	if !strings.Contains(out, `"sensitivity": "moderate"`) || !strings.Contains(out, `"sensitivity": "high"`) {
		t.Errorf("show --json does not record each output's sensitivity:\n%.3000s", out)
	}

	req := []string{"release", "request", "last", "--note", "regional counts for paper 1", "--key", s.akey + ".key"}
	an.refusedWith(t, []string{"high sensitivity", "sensitivity=moderate"}, append(req, "raw.csv")...)
	an.refusedWith(t, []string{"big.txt", "max-size", "16777216"}, append(req, "big.txt")...)
	an.refusedWith(t, []string{"model.bin", "allowed-types"}, append(req, "model.bin")...)
	an.refusedWith(t, []string{"ids.csv", "forbidden-column", "column 1 (patient_id)"}, append(req, "ids.csv")...)
	an.run(t, 2, "release", "request", "last", "table.csv")

	id, errs := an.run(t, 0, append(req, "table.csv", "small.csv")...)
	id = strings.TrimSpace(id)
	if !strings.Contains(errs, "small.csv: small-count at row 2, column 2 (count)") {
		t.Errorf("the small count is not reported:\n%s", errs)
	}
	if ls, _ := ck1.run(t, 0, "release", "ls"); !strings.Contains(ls, id) || !strings.Contains(ls, rootlessUser) {
		t.Errorf("release ls as a checker:\n%s", ls)
	}

	// Refused votes: the requester's own (listed) key, a key the policy
	// does not list.
	an.refusedWith(t, []string{"may not vote", rootlessUser}, "release", "review", id, "--key", s.akey+".key", "--approve", "--note", "mine")
	stray, strayID := ck2.key(t, "stray")
	ck2.refusedWith(t, []string{strayID, "not an output checker"}, "release", "review", id, "--key", stray+".key", "--approve", "--note", "x")

	ck1.run(t, 0, "release", "review", id, "--key", s.k1+".key", "--approve", "--note", "counts are large")
	exp := filepath.Join(ck2.base, "export")
	ck2.refusedWith(t, []string{"1 of the 2 independent approvals"}, "release", "export", id, "-o", exp, "--key", s.k2+".key")

	// Blind review: checker 2 sees no vote until voting.
	view, _ := ck2.run(t, 0, "release", "show", id)
	if !strings.Contains(view, "1, shown once you have voted") || strings.Contains(view, "counts are large") {
		t.Errorf("checker 2 sees checker 1's vote before voting:\n%s", view)
	}
	ck2.run(t, 0, "release", "review", id, "--key", s.k2+".key", "--approve", "--note", "fine, small count is suppressed upstream")
	if view, _ = ck2.run(t, 0, "release", "show", id); !strings.Contains(view, "counts are large") || !strings.Contains(view, "table.csv: approved, 2 of 2") ||
		!strings.Contains(view, "signed; verified with the requester's key") {
		t.Errorf("after voting, checker 2 does not see both votes:\n%s", view)
	}

	pagePath := filepath.Join(ck2.base, "req.html")
	ck2.run(t, 0, "release", "show", id, "--html", pagePath)
	page, _ := os.ReadFile(pagePath)
	for _, w := range []string{"small-count at row 2, column 2 (count)", "<td>count</td><td>true</td><td>3</td><td>40</td>", "verified with the requester&#39;s key", "counts are large"} {
		if !strings.Contains(string(page), w) {
			t.Errorf("the HTML page lacks %q", w)
		}
	}
	listed, _ := ck2.run(t, 0, "release", "export", id, "-o", exp, "--key", s.k2+".key")
	checkReleaseExport(t, exp, s.k2+".pub", listed, "table.csv", "small.csv")
	ck1.run(t, 0, "release", "verify")
	logText, _ := ck1.run(t, 0, "release", "log")
	for _, w := range []string{"request", "view", "vote", "export", rootlessUser, "runprovchk1", "runprovchk2"} {
		if !strings.Contains(logText, w) {
			t.Errorf("release log lacks %s:\n%s", w, logText)
		}
	}
	tamperRelease(t, s, id)

	// An output changed since the run recorded it cannot be requested.
	var changed string
	filepath.WalkDir(filepath.Join(an.store, "runs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "table.csv" {
			changed = p
		}
		return nil
	})
	if err := os.WriteFile(changed, []byte("region,n\nnorth,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	an.refusedWith(t, []string{"changed since run", "only what the run made"}, append(req, "table.csv")...)
}

// TestReleaseNeedsSpool: without a policy naming a release spool, every
// release command is refused, saying what an administrator must set; a
// review needs exactly one decision.
func TestReleaseNeedsSpool(t *testing.T) {
	policyDir(t)
	t.Setenv("RUNPROV_POLICY", "")
	store := newCLIStore(t)
	for _, args := range [][]string{{"release", "ls"}, {"release", "verify"}, {"release", "show", "abc"}} {
		_, errs := mustCLI(t, exitRunprov, store, args...)
		if !strings.Contains(errs, "no release spool") || !strings.Contains(errs, "release_dir") {
			t.Errorf("%v: %s", args, errs)
		}
	}
	mustCLI(t, exitUsage, store, "release", "review", "abc", "--key", "k", "--approve", "--reject", "--note", "x")
	mustCLI(t, exitUsage, store, "release", "request", "last")
}

// checkReleaseExport: the files listed are the files exported and the
// envelope's subjects; the envelope verifies with pub in securesystemslib;
// the crate validates.
func checkReleaseExport(t *testing.T, dir, pub, listed string, files ...string) {
	t.Helper()
	payload, ok := independentVerify(t, filepath.Join(dir, "release.intoto.dsse.json"), pub)
	if !ok {
		t.Fatalf("the independent verifier rejects the release:\n%s", payload)
	}
	var st struct {
		Subject []struct {
			Name   string            `json:"name"`
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
		PredicateType string `json:"predicateType"`
		Predicate     struct {
			Votes []struct{ Decision string } `json:"votes"`
			Runs  []struct {
				RecordSHA256 string `json:"record_sha256"`
				Signed       bool   `json:"signed"`
			} `json:"runs"`
		} `json:"predicate"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(payload)), &st); err != nil {
		t.Fatalf("payload: %v\n%s", err, payload)
	}
	if len(st.Subject) != len(files) || st.PredicateType != "https://runprov.dev/release/v1" || len(st.Predicate.Votes) != 2 ||
		len(st.Predicate.Runs) != 1 || !st.Predicate.Runs[0].Signed || len(st.Predicate.Runs[0].RecordSHA256) != 64 {
		t.Errorf("statement %+v", st)
	}
	for _, s := range st.Subject {
		data, err := os.ReadFile(filepath.Join(dir, s.Name))
		sum := sha256.Sum256(data)
		if err != nil || hex.EncodeToString(sum[:]) != s.Digest["sha256"] {
			t.Errorf("subject %s: the exported file does not match (%v)", s.Name, err)
		}
		if !strings.Contains(listed, filepath.Join(dir, s.Name)) {
			t.Errorf("export did not list %s:\n%s", s.Name, listed)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != len(files)+2 {
		t.Errorf("export wrote %d entries, want the %d files, the envelope and the crate", len(ents), len(files))
	}
	crate, err := os.ReadFile(filepath.Join(dir, "ro-crate-metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	validateJSON(t, compileCLISchema(t, "ro-crate-1.1.schema.json"), crate)
	for _, w := range []string{`"https://w3id.org/5s-crate/0.4"`, `"https://w3id.org/shp#DisclosureCheck"`, `"https://w3id.org/shp#SignOff"`, `"#request-`, `"#run-`} {
		if !strings.Contains(string(crate), w) {
			t.Errorf("the crate lacks %s", w)
		}
	}
	checkLocalRefs(t, crate)
}

// checkLocalRefs: every reference to a local entity ("#..." or a file)
// resolves in the crate.
func checkLocalRefs(t *testing.T, doc []byte) {
	t.Helper()
	var m struct {
		Graph []map[string]any `json:"@graph"`
	}
	json.Unmarshal(doc, &m)
	ids := map[string]bool{}
	for _, e := range m.Graph {
		ids[e["@id"].(string)] = true
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if id, ok := x["@id"].(string); ok && len(x) == 1 && !strings.Contains(id, "://") && !ids[id] {
				t.Errorf("the crate refers to %s, which it does not describe", id)
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	for _, e := range m.Graph {
		for k, v := range e {
			if k != "@id" {
				walk(v)
			}
		}
	}
}

// tamperRelease changes the spool behind runprov's back, one thing at a
// time, and wants release verify (and export) to find it; each change is
// undone after.
func tamperRelease(t *testing.T, s *releaseSite, id string) {
	t.Helper()
	votes, _ := filepath.Glob(filepath.Join(s.spool, "votes", id+".*"))
	logs, _ := filepath.Glob(filepath.Join(s.spool, "log", "*.json"))
	snaps, _ := filepath.Glob(filepath.Join(s.spool, "requests", id, "files", "*"))
	if len(votes) != 2 || len(logs) < 5 || len(snaps) != 2 {
		t.Fatalf("spool: %d votes, %d log entries, %d snapshots", len(votes), len(logs), len(snaps))
	}
	edit := func(path string, f func([]byte) []byte) func() {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Dir(path), 0o777|os.ModeSticky)
		os.Remove(path)
		if f != nil {
			os.WriteFile(path, f(data), 0o444)
		}
		return func() { os.Remove(path); os.WriteFile(path, data, 0o444) }
	}
	for _, tc := range []struct {
		what string
		path string
		f    func([]byte) []byte
		want string
	}{
		{"edited vote", votes[0], func(b []byte) []byte { return bytes.Replace(b, []byte(`"sig":"`), []byte(`"sig":"A`), 1) }, "it was changed"},
		{"deleted vote", votes[1], nil, "it was removed"},
		{"edited log entry", logs[2], func(b []byte) []byte { return bytes.Replace(b, []byte(`"view"`), []byte(`"vote"`), 1) }, "does not follow the entry before it"},
		{"deleted log entry", logs[1], nil, "an entry was removed or added"},
		{"deleted vote's log entry", logs[3], nil, "has no entry in the log"},
		{"changed run record", filepath.Join(s.spool, "requests", id, "run.dsse.json"), func(b []byte) []byte { return append(b, ' ') }, "the run's record run.dsse.json is not the one requested"},
		{"changed snapshot", snaps[0], func(b []byte) []byte { return append(b, "9,9\n"...) }, "changed after it was requested"},
	} {
		undo := edit(tc.path, tc.f)
		out, _ := s.ck1.run(t, 1, "release", "verify")
		if !strings.Contains(out, tc.want) {
			t.Errorf("%s: release verify does not say %q:\n%s", tc.what, tc.want, out)
		}
		if tc.what == "changed snapshot" {
			s.ck2.refusedWith(t, []string{"does not verify", "changed after it was requested"}, "release", "export", id, "-o", filepath.Join(s.ck2.base, "again"), "--key", s.k2+".key")
		}
		undo()
	}
	// A log entry by checker 1 that the analyst's account wrote.
	os.Chown(logs[1], s.analyst.uid, s.analyst.gid)
	if out, _ := s.ck1.run(t, 1, "release", "verify"); !strings.Contains(out, "but uid "+strconv.Itoa(s.analyst.uid)+" wrote it") {
		t.Errorf("an entry written by another account:\n%s", out)
	}
	os.Chown(logs[1], s.ck1.uid, s.ck1.gid)
	s.ck1.run(t, 0, "release", "verify")
}
