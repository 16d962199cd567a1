package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
)

const killedOutputRunfile = `FROM IMAGE
SCRATCH /scratch
OUTPUT /out
CMD ["/bin/sh", "-c", "echo partial > /out/result.txt && echo secret > /scratch/f && echo wrote-output && sleep 60"]
`

// TestRunKilledRecordsOutputs: a runprov killed with SIGKILL after its
// container wrote an output cannot hash it; the next command, which marks
// the run aborted, records that output with its sha256 in the same
// transaction, and the file is the user's again.
func TestRunKilledRecordsOutputs(t *testing.T) {
	requireRunc(t)
	rs := newRunStore(t, killedOutputRunfile)
	outDir := filepath.Join(t.TempDir(), "out")
	cmd, id := startRunUntil(t, rs, "wrote-output", "--outputs", outDir)
	cmd.Process.Kill()
	cmd.Wait()
	if n := runFileCount(t, rs.dir, id); n != 0 {
		t.Fatalf("the killed run has %d file rows before any clean-up", n)
	}

	out, _ := mustCLI(t, 0, rs.dir, "--json", "show", id)
	var r core.Run
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("partial\n"))
	if r.Status != core.RunAborted || len(r.Outputs) != 1 || r.Outputs[0].SHA256 != hex.EncodeToString(sum[:]) || !strings.HasSuffix(r.Outputs[0].Path, "result.txt") {
		t.Fatalf("the aborted run: status %s, outputs %+v; want aborted with result.txt hashed", r.Status, r.Outputs)
	}
	if fi, err := os.Stat(filepath.Join(outDir, "result.txt")); err != nil || ownerUID(fi) != os.Getuid() {
		t.Errorf("result.txt after the clean-up: %v, want it owned by uid %d (the user who ran runprov)", err, os.Getuid())
	}
	mustCLI(t, 0, rs.dir, "fsck")
}

func runFileCount(t *testing.T, store, id string) int {
	t.Helper()
	db := storeDB(t, store)
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM run_files WHERE run_id = ?", id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
