package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/drivers/sqlite/sqlitetest"
)

const chainRunfile = `FROM IMAGE
CMD ["/bin/sh", "-c", "echo result > /safe_outputs/out.txt"]
`

// chainStore is a store with an image import, two real runs (one failed)
// with outputs, and a config change: every kind of chain entry.
func chainStore(t *testing.T) (string, [2]*core.Run) {
	t.Helper()
	requireRunc(t)
	rs := newRunStore(t, chainRunfile)
	var runs [2]*core.Run
	r, errs, code := rs.run(t, "--no-input")
	if code != 0 || r == nil {
		t.Fatalf("run: exit %d\n%s", code, errs)
	}
	runs[0] = r
	r, errs, code = rs.run(t, "--no-input", "--", "/bin/sh", "-c", "echo other > /safe_outputs/b.txt; exit 3")
	if code != 3 || r == nil {
		t.Fatalf("failing run: exit %d\n%s", code, errs)
	}
	runs[1] = r
	mustCLI(t, 0, rs.dir, "image", "approve", rs.image, "--note", "chain test")
	mustCLI(t, 0, rs.dir, "config", "require-approval", "true")
	fsckHolds(t, rs.dir)
	return rs.dir, runs
}

// copyStore copies a store, so that each tamper case starts from the same one.
func copyStore(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "store")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	return dst
}

// fsckFinds runs fsck, which must exit 125 and print every line of want.
func fsckFinds(t *testing.T, store string, want ...string) {
	t.Helper()
	out, _ := mustCLI(t, 125, store, "fsck")
	t.Logf("fsck:\n%s", out)
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("fsck output lacks %q:\n%s", w, out)
		}
	}
}

func chainSeq(t *testing.T, store, kind, key string) string {
	t.Helper()
	out, _ := mustCLI(t, 0, store, "query", "--csv", "SELECT max(seq) FROM chain WHERE kind = '"+kind+"' AND key = '"+key+"'")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

func TestChainTamper(t *testing.T) {
	base, runs := chainStore(t)
	a, b := runs[0].ID, runs[1].ID
	if len(runs[0].Outputs) == 0 {
		t.Fatalf("run %s recorded no outputs", a)
	}
	// The events of the base store: the image import and approval, and
	// require-approval set at init and changed later.
	out, _ := mustCLI(t, 0, base, "query", "--csv", "SELECT kind, count(*) FROM chain GROUP BY kind ORDER BY kind")
	if want := "config_event,2\nimage_event,2\nrun,2"; !strings.Contains(out, want) {
		t.Fatalf("chain entries by kind:\n%s\nwant %s", out, want)
	}
	seqA, seqB := chainSeq(t, base, "run", a), chainSeq(t, base, "run", b)
	cases := []struct {
		name   string
		tamper []string
		want   func(store string) []string
	}{
		{"output sha256 edited", []string{`UPDATE run_files SET sha256 = '` + sqlitetest.Hex64("forged") + `' WHERE run_id = '` + a + `' AND kind = 'output'`},
			func(s string) []string {
				return []string{"chain entry " + chainSeq(t, s, "run", a) + ": run " + a + "'s canonical hash differs"}
			}},
		{"exit code edited", []string{`UPDATE runs SET exit_code = 0, status = 'succeeded' WHERE id = '` + b + `'`},
			func(s string) []string {
				return []string{"chain entry " + chainSeq(t, s, "run", b) + ": run " + b + "'s canonical hash differs"}
			}},
		{"run deleted", []string{`DELETE FROM run_files WHERE run_id = '` + a + `'`, `DELETE FROM run_steps WHERE run_id = '` + a + `'`, `DELETE FROM runs WHERE id = '` + a + `'`},
			func(s string) []string {
				return []string{"chain entry " + chainSeq(t, s, "run", a) + ": run " + a + " is missing"}
			}},
		{"run entries swapped", []string{
			`UPDATE chain SET seq = 1000000 WHERE kind = 'run' AND key = '` + a + `'`,
			`UPDATE chain SET seq = ` + seqA + ` WHERE kind = 'run' AND key = '` + b + `'`,
			`UPDATE chain SET seq = ` + seqB + ` WHERE kind = 'run' AND key = '` + a + `'`},
			func(string) []string {
				return []string{"chain entry " + seqA + ": run " + b + ": the link to entry"}
			}},
		{"image event deleted", []string{`DELETE FROM image_events WHERE id = 2`},
			func(s string) []string {
				return []string{"chain entry " + chainSeq(t, s, "image_event", "2") + ": image event 2 is missing"}
			}},
		{"config event edited", []string{`UPDATE config_events SET user = 'someone-else' WHERE id = 1`},
			func(s string) []string {
				return []string{"chain entry " + chainSeq(t, s, "config_event", "1") + ": config event 1's canonical hash differs"}
			}},
		{"config event inserted", []string{`INSERT INTO config_events(key, old_value, new_value, at, user, uid) VALUES('require-approval', 'true', 'false', '2026-01-01T00:00:00.000000000Z', 'x', 0)`},
			func(string) []string { return []string{"config event 3: not in the chain"} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store := copyStore(t, base)
			db := storeDB(t, store)
			for _, q := range c.tamper {
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			db.Close()
			fsckFinds(t, store, c.want(store)...)
		})
	}
}

// TestChainUpgrade opens a store of schema version 5 holding runs and
// events: the upgrade chains them, marked migrated, and fsck then holds
// and names an edit of one of them with the migration's date.
func TestChainUpgrade(t *testing.T) {
	ctx := context.Background()
	store := filepath.Join(t.TempDir(), "store")
	st, err := sqlite.InitAtVersion(ctx, store, nil, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`INSERT INTO settings(key, value) VALUES('require-approval', 'false')`,
		`INSERT INTO config_events(key, new_value, at, user, uid) VALUES('require-approval', 'false', '2025-12-30T00:00:00.000000000Z', 'root', 0)`} {
		if _, err := st.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	running := sqlitetest.SyntheticRun(2, 0)
	running.Status, running.ExitCode, running.Ended = core.RunRunning, nil, time.Time{}
	runs := []core.Run{sqlitetest.SyntheticRun(0, 2), sqlitetest.SyntheticRun(1, 1), running}
	if err := sqlitetest.InsertRuns(ctx, st.DB(), runs); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().Exec(`INSERT INTO image_events(digest, event, at, user, uid, note) VALUES(?, 'import', ?, 'root', 0, 'oci-layout:/x')`,
		"sha256:"+sqlitetest.Hex64("image"), "2025-12-31T00:00:00.000000000Z"); err != nil {
		t.Fatal(err)
	}
	if v, err := st.SchemaVersion(ctx); err != nil || v != 5 {
		t.Fatalf("schema version %d, %v; want 5", v, err)
	}
	st.Close()

	fsckHolds(t, store)
	out, _ := mustCLI(t, 0, store, "query", "--csv", "SELECT kind, key, migrated FROM chain ORDER BY seq")
	want := "kind,key,migrated\nconfig_event,1,1\nimage_event,1,1\nrun," + runs[0].ID + ",1\nrun," + runs[1].ID + ",1\n"
	if out != want {
		t.Fatalf("chain after upgrade:\n%s\nwant:\n%s", out, want)
	}
	mustCLI(t, 0, store, "config", "require-approval", "true")
	fsckHolds(t, store)

	db := storeDB(t, store)
	mustExec(t, db, `UPDATE runs SET exit_code = 0 WHERE id = ?`, runs[1].ID)
	db.Close()
	fsckFinds(t, store, "chain entry 4: run "+runs[1].ID+"'s canonical hash differs",
		"chained at migration on "+time.Now().UTC().Format("2006-01-02"))
}

// rechainFrom recomputes the chain from entry first on, as an attacker who
// edited a config event would to hide it: this is the canonical form and
// link hash that README documents, written independently of the store.
func rechainFrom(t *testing.T, db *sql.DB, first int) {
	t.Helper()
	var prev string
	if err := db.QueryRow(`SELECT sha256 FROM chain WHERE seq = ?`, first-1).Scan(&prev); err != nil && first > 1 {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT c.seq, c.key, c.chained_at, e.id, e.key, e.old_value, e.new_value, e.at, e.user, e.uid, e.note
		FROM chain c JOIN config_events e ON c.kind = 'config_event' AND e.id = CAST(c.key AS INTEGER) WHERE c.seq >= ? ORDER BY c.seq`, first)
	if err != nil {
		t.Fatal(err)
	}
	type fix struct {
		seq        int64
		entry, sum string
	}
	var fixes []fix
	for rows.Next() {
		var (
			seq, id, uid                          int64
			key, at, ekey, newv, when, user, note string
			old                                   sql.NullString
		)
		if err := rows.Scan(&seq, &key, &at, &id, &ekey, &old, &newv, &when, &user, &uid, &note); err != nil {
			t.Fatal(err)
		}
		q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
		oldJSON := "null"
		if old.Valid {
			oldJSON = q(old.String)
		}
		canon := fmt.Sprintf(`{"kind":"config_event","row":{"id":%d,"key":%s,"old_value":%s,"new_value":%s,"at":%s,"user":%s,"uid":%d,"note":%s}}`,
			id, q(ekey), oldJSON, q(newv), q(when), q(user), uid, q(note))
		entry := fmt.Sprintf("%x", sha256.Sum256([]byte(canon)))
		sum := fmt.Sprintf("%x", sha256.Sum256(fmt.Appendf(nil, "%d\n%s\n%s\n%s\n%s\n%s\n%d", seq, "config_event", key, entry, prev, at, 0)))
		fixes = append(fixes, fix{seq, entry, sum})
		prev = sum
	}
	rows.Close()
	for _, f := range fixes {
		mustExec(t, db, `UPDATE chain SET entry_sha256 = ?, prev_sha256 = coalesce((SELECT sha256 FROM chain WHERE seq = ? - 1), ''), sha256 = ? WHERE seq = ?`,
			f.entry, f.seq, f.sum, f.seq)
	}
}

// TestChainSignedHead: fsck --sign-head signs the head with the policy's
// sign_key; a chain rewritten after that, every hash recomputed, passes the
// chain check but not the signed head, nor does a forged envelope.
func TestChainSignedHead(t *testing.T) {
	dir := policyDir(t)
	store := newCLIStore(t)
	mustCLI(t, 0, store, "key", "generate", "--out", filepath.Join(dir, "signer"))
	_, errs := mustCLI(t, 125, store, "fsck", "--sign-head")
	if !strings.Contains(errs, "sign_key") {
		t.Errorf("fsck --sign-head without a sign_key: %s", errs)
	}
	writePolicy(t, filepath.Join(dir, "policy.json"), `{"sign_key": "`+dir+`/signer.key"}`)
	mustCLI(t, 0, store, "config", "require-approval", "true")
	_, errs = mustCLI(t, 0, store, "fsck", "--sign-head")
	if !strings.Contains(errs, "signed chain head 2") {
		t.Fatalf("fsck --sign-head: %s", errs)
	}
	fsckHolds(t, store)

	rewritten := copyStore(t, store)
	db := storeDB(t, rewritten)
	mustExec(t, db, `UPDATE config_events SET user = 'someone-else' WHERE id = 1`)
	rechainFrom(t, db, 1)
	db.Close()
	out, _ := mustCLI(t, 125, rewritten, "fsck")
	if want := "signed head 2: the chain's entry differs from the signed head"; !strings.Contains(out, want) || strings.Contains(out, "chain entry") {
		t.Errorf("fsck of a rewritten chain: want only %q:\n%s", want, out)
	}

	forged := copyStore(t, store)
	db = storeDB(t, forged)
	mustExec(t, db, `UPDATE chain_heads SET envelope = replace(envelope, '"sig":"', '"sig":"AAAA') WHERE seq = 2`)
	db.Close()
	fsckFinds(t, forged, "signed head 2: the signature does not verify")
}
