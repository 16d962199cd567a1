package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/drivers/sqlite/sqlitetest"
)

// TestStaleRunWithReusedPid: a running run whose owner pid now belongs to
// another process (same pid, other start time) is marked aborted by the
// next command; a run whose owner is alive is left running.
func TestStaleRunWithReusedPid(t *testing.T) {
	store := t.TempDir()
	mustCLI(t, 0, store, "init")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, store, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 2 {
		r := sqlitetest.SyntheticRun(i, 0)
		r.Status, r.ExitCode, r.Ended = core.RunRunning, nil, time.Time{}
		r.Hostname, _ = os.Hostname() // owned by a process of this host
		if err := st.CreateRun(ctx, &r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	// Both belong to this (live) process; the first claims another start,
	// as a dead runprov's row does once its pid is reused.
	if _, err := st.DB().Exec("UPDATE runs SET owner_start = 'another-boot:1' WHERE id = ?", ids[0]); err != nil {
		t.Fatal(err)
	}
	st.Close()
	mustCLI(t, 0, store, "runs")
	st, err = sqlite.Open(ctx, store, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i, want := range []core.RunStatus{core.RunAborted, core.RunRunning} {
		r, err := st.Run(ctx, ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != want {
			t.Errorf("run %d: %s (%s), want %s", i, r.Status, r.Reason, want)
		}
	}
}

// TestImageRmRefusesImageInUse: an image that a running run uses is not
// removed (its rootfs is in use) unless --force.
func TestImageRmRefusesImageInUse(t *testing.T) {
	idx, host := cliTestIndex(t)
	idxD, hostD := digest(t, idx), digest(t, host)
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	store := newCLIStore(t)
	mustCLI(t, 0, store, "image", "import", dir)

	ctx := context.Background()
	st, err := sqlite.Open(ctx, store, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := sqlitetest.SyntheticRun(0, 0)
	r.Status, r.ExitCode, r.Ended = core.RunRunning, nil, time.Time{}
	r.Hostname, _ = os.Hostname()
	r.ImageDigest, r.IndexDigest = hostD, idxD
	if err := st.CreateRun(ctx, &r); err != nil {
		t.Fatal(err)
	}
	st.Close()

	_, errOut := mustCLI(t, 125, store, "image", "rm", idxD)
	if !strings.Contains(errOut, "in use") || !strings.Contains(errOut, core.ShortRunID(r.ID)) {
		t.Fatalf("rm of an image in use: %s", errOut)
	}
	out, _ := mustCLI(t, 0, store, "--json", "image", "ls")
	if !strings.Contains(out, hostD) {
		t.Fatalf("the refused rm removed the image:\n%s", out)
	}
	mustCLI(t, 0, store, "image", "rm", "--force", idxD)
}
