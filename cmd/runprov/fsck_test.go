package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// fsckStore is a store with two commits in repo default and one in repo
// other; it returns the store and the default repo's commits, oldest first.
func fsckStore(t *testing.T) (string, []string) {
	t.Helper()
	store := newCLIStore(t)
	hashes := addRunfiles(t, store, "Runfile", "jobs/b.Runfile")
	f := filepath.Join(t.TempDir(), "other.Runfile")
	if err := os.WriteFile(f, []byte(remoteRunfile(77)), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, 0, store, "add", "--repo", "other", f)
	fsckHolds(t, store)
	return store, hashes
}

// storeDB opens the store's database for writing, as an attacker or a bad
// disk would.
func storeDB(t *testing.T, store string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(store, "runprov.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	res, err := db.Exec(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%s: changed %d rows, want 1", q, n)
	}
}

func repoTarball(t *testing.T, db *sql.DB, name string) []byte {
	t.Helper()
	var blob []byte
	if err := db.QueryRow("SELECT container_run_commands FROM repos WHERE name = ?", name).Scan(&blob); err != nil {
		t.Fatal(err)
	}
	return blob
}

// setTarball stores blob as repo name's tarball with a matching sha256 and
// size, so only the checks past the digest can catch what is wrong with it.
func setTarball(t *testing.T, db *sql.DB, name string, blob []byte) {
	t.Helper()
	sum := sha256.Sum256(blob)
	mustExec(t, db, "UPDATE repos SET container_run_commands = ?, tarball_sha256 = ?, tarball_size = ? WHERE name = ?",
		blob, hex.EncodeToString(sum[:]), len(blob), name)
}

// dropTarEntries rewrites tarball without the regular files whose name
// holds part.
func dropTarEntries(t *testing.T, tarball []byte, part string) []byte {
	t.Helper()
	var out bytes.Buffer
	tr, tw := tar.NewReader(bytes.NewReader(tarball)), tar.NewWriter(&out)
	dropped := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg && strings.Contains(h.Name, part) {
			dropped++
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if dropped == 0 {
		t.Fatalf("the tarball has no file named *%s*", part)
	}
	return out.Bytes()
}

// TestFsckFindsCorruption corrupts a real store one way per case; each must
// make fsck exit 125 and name the problem on stdout, and an untouched store
// must pass (fsckStore checks that).
func TestFsckFindsCorruption(t *testing.T) {
	const zeros = "0000000000000000000000000000000000000000000000000000000000000000"
	// In want, HEAD0 and HEAD1 stand for the default repo's commits as
	// fsck shortens them, FULL0 and FULL1 for the full hashes.
	const fake = "1234567890abcdef1234567890abcdef12345678"
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, db *sql.DB, hashes []string)
		want    []string // on stdout
	}{
		{"tarball sha256 column", func(t *testing.T, db *sql.DB, _ []string) {
			mustExec(t, db, "UPDATE repos SET tarball_sha256 = ? WHERE name = 'default'", zeros)
		}, []string{`repo "default": container_run_commands sha256 is`, "recorded " + zeros}},
		{"tarball size column", func(t *testing.T, db *sql.DB, _ []string) {
			mustExec(t, db, "UPDATE repos SET tarball_size = tarball_size + 1 WHERE name = 'default'")
		}, []string{`repo "default": container_run_commands is`, "bytes, recorded"}},
		{"commit row not in git", func(t *testing.T, db *sql.DB, hashes []string) {
			mustExec(t, db, `INSERT INTO commits (repo_id, hash, path, blob, image_ref, image_digest, message, author, committed_at, seq)
				SELECT repo_id, ?, path, blob, image_ref, image_digest, message, author, committed_at, seq + 100 FROM commits WHERE hash = ?`, fake, hashes[1])
		}, []string{`repo "default" commit ` + fake[:12], "indexed but not in git"}},
		{"head moved back", func(t *testing.T, db *sql.DB, hashes []string) {
			mustExec(t, db, "UPDATE repos SET head = ? WHERE name = 'default'", hashes[0])
		}, []string{`repo "default": git head is "FULL1", recorded "FULL0"`}},
		{"head not a commit", func(t *testing.T, db *sql.DB, _ []string) {
			mustExec(t, db, "UPDATE repos SET head = ? WHERE name = 'default'", fake)
		}, []string{`repo "default": git head is`, `recorded "` + fake + `"`}},
		{"truncated tarball", func(t *testing.T, db *sql.DB, _ []string) {
			blob := repoTarball(t, db, "default")
			mustExec(t, db, "UPDATE repos SET container_run_commands = ? WHERE name = 'default'", blob[:len(blob)/2])
		}, []string{`repo "default": container_run_commands sha256 is`, `repo "default": container_run_commands is`, "cannot open the repository from its tarball"}},
		{"truncated tarball, digest updated", func(t *testing.T, db *sql.DB, _ []string) {
			blob := repoTarball(t, db, "default")
			setTarball(t, db, "default", blob[:len(blob)/2+100])
		}, []string{`repo "default": cannot open the repository from its tarball`}},
		{"another repo's tarball, digest updated", func(t *testing.T, db *sql.DB, hashes []string) {
			setTarball(t, db, "default", repoTarball(t, db, "other"))
		}, []string{`repo "default": git head is`, `repo "default" commit ` + "HEAD0" + " Runfile: indexed but not in git"}},
		{"tarball without its objects, digest updated", func(t *testing.T, db *sql.DB, _ []string) {
			setTarball(t, db, "default", dropTarEntries(t, repoTarball(t, db, "default"), "/objects/"))
		}, []string{`repo "default" commit HEAD0 Runfile: indexed but not in git`, `repo "default" commit HEAD1 jobs/b.Runfile: indexed but not in git`}},
		{"commit message changed", func(t *testing.T, db *sql.DB, hashes []string) {
			mustExec(t, db, "UPDATE commits SET message = 'rewritten' WHERE hash = ?", hashes[0])
		}, []string{`repo "default" commit ` + "HEAD0" + " Runfile: author, time or message differ"}},
		{"commit blob changed", func(t *testing.T, db *sql.DB, hashes []string) {
			mustExec(t, db, "UPDATE commits SET blob = ? WHERE hash = ?", fake, hashes[1])
		}, []string{`repo "default" commit ` + "HEAD1" + " jobs/b.Runfile: Runfile blob is", "in git, " + fake + " in the index"}},
		{"commit image changed", func(t *testing.T, db *sql.DB, hashes []string) {
			mustExec(t, db, "UPDATE commits SET image_digest = 'sha256:"+zeros+"' WHERE hash = ?", hashes[0])
		}, []string{`repo "default" commit ` + "HEAD0" + " Runfile: Runfile pins"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, hashes := fsckStore(t)
			db := storeDB(t, store)
			tc.corrupt(t, db, hashes)
			db.Close()
			out, errs := mustCLI(t, 125, store, "fsck")
			for _, w := range tc.want {
				w = strings.NewReplacer("FULL0", hashes[0], "FULL1", hashes[1], "HEAD0", hashes[0][:12], "HEAD1", hashes[1][:12]).Replace(w)
				if !strings.Contains(out, w) {
					t.Errorf("fsck stdout lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, `repo "other"`) {
				t.Errorf("fsck blames the untouched repo other:\n%s", out)
			}
			if !strings.Contains(errs, "fsck found") {
				t.Errorf("fsck stderr does not say it found problems:\n%s", errs)
			}
			// --json reports the same problems and ok false.
			js, _ := mustCLI(t, 125, store, "--json", "fsck")
			if !strings.Contains(js, `"ok": false`) {
				t.Errorf("fsck --json:\n%s", js)
			}
		})
	}
}
