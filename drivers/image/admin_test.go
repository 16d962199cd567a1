package image

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
)

// Under require-approval an unapproved image is refused; approve lets it
// run, revoke refuses it again; every change is recorded with time, user
// and note.
func TestApproval(t *testing.T) {
	ctx := context.Background()
	idx, amd, arm := testIndex(t)
	s, _ := newTestStore(t, true)
	if _, err := s.Import(ctx, writeLayout(t, idx, "example.org/busybox:1"), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	idxD, amdD, armD := digestOf(t, idx), digestOf(t, amd), digestOf(t, arm)
	resolve := func(d, platform string) *core.ResolvedImage {
		t.Helper()
		r, err := s.Resolve(ctx, d, platform)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	err := s.CheckApproval(ctx, resolve(idxD, ""))
	var na *core.NotApprovedError
	if !errors.Is(err, core.ErrNotApproved) || !errors.As(err, &na) || na.Digest() != idxD {
		t.Fatalf("unapproved image: %v", err)
	}
	for _, want := range []string{idxD, "require-approval=true"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}

	// Approving one manifest approves that platform only.
	if _, err := s.Approve(ctx, armD, "arm build reviewed"); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckApproval(ctx, resolve(idxD, "linux/arm64")); err != nil {
		t.Errorf("approved arm64 manifest refused: %v", err)
	}
	if err := s.CheckApproval(ctx, resolve(idxD, "")); !errors.Is(err, core.ErrNotApproved) {
		t.Errorf("unapproved amd64 manifest: %v", err)
	}
	// Approving the index approves every platform of it.
	rec, err := s.Approve(ctx, idxD[:16], "reviewed by the software panel, ticket 42")
	if err != nil || !rec.Approved || rec.ApprovalNote != "reviewed by the software panel, ticket 42" || rec.ApprovedAt.IsZero() || rec.ApprovedBy == "" {
		t.Fatalf("approve: %+v %v", rec, err)
	}
	r := resolve(idxD, "")
	if err := s.CheckApproval(ctx, r); err != nil || !r.Approved || r.ApprovalNote != "reviewed by the software panel, ticket 42" {
		t.Errorf("approved index: %v %+v", err, r)
	}
	if err := s.CheckApproval(ctx, resolve(amdD, "")); !errors.Is(err, core.ErrNotApproved) {
		t.Errorf("the amd64 manifest named by its own digest is not covered by the index's approval: %v", err)
	}

	if _, err := s.Revoke(ctx, idxD, "CVE-2025-0001"); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckApproval(ctx, resolve(idxD, "")); !errors.Is(err, core.ErrNotApproved) {
		t.Errorf("revoked image: %v", err)
	}
	if _, err := s.Revoke(ctx, idxD, ""); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("revoke twice: %v", err)
	}

	evs, err := s.Events(ctx, idxD)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, e := range evs {
		got = append(got, e.Event+"|"+e.Note)
		if e.At.IsZero() || e.User == "" || e.UID != os.Getuid() || (i > 0 && e.At.Before(evs[i-1].At)) {
			t.Errorf("event %+v", e)
		}
	}
	want := "import|oci-layout:|approve|reviewed by the software panel, ticket 42|revoke|CVE-2025-0001"
	if g := strings.Join(got, "|"); !strings.HasPrefix(g, "import|oci-layout:") || !strings.HasSuffix(g, "approve|reviewed by the software panel, ticket 42|revoke|CVE-2025-0001") {
		t.Errorf("events %s\nwant %s", g, want)
	}

	// Without require-approval every image may run.
	s2, db2 := newTestStore(t, false)
	if _, err := s2.Import(ctx, writeLayout(t, idx, ""), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	r2, _ := s2.Resolve(ctx, idxD, "")
	if err := s2.CheckApproval(ctx, r2); err != nil {
		t.Errorf("approval not required: %v", err)
	}
	db2.SetSetting(ctx, core.SettingRequireApproval, "true")
	if err := s2.CheckApproval(ctx, r2); !errors.Is(err, core.ErrNotApproved) {
		t.Errorf("after turning require-approval on: %v", err)
	}
}

// rm removes rows, rootfs and blobs; it refuses a manifest of a stored
// index and an approved image; gc removes what nothing references.
func TestRemoveAndGC(t *testing.T) {
	ctx := context.Background()
	idx, amd, _ := testIndex(t)
	s, _ := newTestStore(t, false)
	if _, err := s.Import(ctx, writeLayout(t, idx, ""), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	other := importImage(t, s, testImage(t, "amd64", gzLayer(t, layerTar(t, tFile("other", "o\n", 0o644)))))
	idxD, amdD := digestOf(t, idx), digestOf(t, amd)
	dir, _, err := s.Unpack(ctx, amdD, nil)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, "bin"), 0o555) // rm must cope with read-only directories

	if _, err := s.Remove(ctx, amdD, RemoveOptions{}); !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), "remove the index") {
		t.Errorf("rm of a manifest of a stored index: %v", err)
	}
	s.Approve(ctx, idxD, "ok")
	if _, err := s.Remove(ctx, idxD, RemoveOptions{}); !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), "revoke it first") {
		t.Errorf("rm of an approved image: %v", err)
	}
	removed, err := s.Remove(ctx, idxD, RemoveOptions{Force: true})
	if err != nil || len(removed) != 3 {
		t.Fatalf("rm --force: %v %v", removed, err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rm left the rootfs %s", dir)
	}
	recs, _ := s.List(ctx)
	if len(recs) != 2 || recs[1].Digest != other { // importImage stores an index of one manifest
		t.Errorf("after rm: %+v", recs)
	}
	if err := s.Verify(ctx, other, nil); err != nil {
		t.Errorf("the other image lost blobs: %v", err)
	}
	if n := len(storedBlobs(t, s)); n != 4 { // index, manifest, config, layer of the other image
		t.Errorf("%d blobs left, want 4: %v", n, storedBlobs(t, s))
	}
	evs, _ := s.Events(ctx, idxD)
	if len(evs) == 0 || evs[len(evs)-1].Event != core.ImageEventRemove {
		t.Errorf("events after rm: %+v", evs)
	}

	// Leftovers: a blob nothing references, a rootfs of no image.
	os.WriteFile(filepath.Join(s.blobDir(), strings.Repeat("ab", 32)), []byte("orphan"), 0o644)
	orphan := s.layout.Rootfs(strings.Repeat("cd", 32))
	os.MkdirAll(filepath.Join(orphan, "x"), 0o755)
	os.Chmod(filepath.Join(orphan, "x"), 0o500)
	st, err := s.GC(ctx)
	if err != nil || st.Blobs != 1 || st.BlobBytes != 6 || st.Rootfs != 1 {
		t.Fatalf("gc: %+v %v", st, err)
	}
	if err := s.Verify(ctx, other, nil); err != nil {
		t.Errorf("gc removed a blob in use: %v", err)
	}
	if st, err := s.GC(ctx); err != nil || st != (GCStats{}) {
		t.Errorf("second gc: %+v %v", st, err)
	}
}

// fsck: a clean store has no problems; a missing or truncated blob is one.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	idx, amd, _ := testIndex(t)
	s, _ := newTestStore(t, false)
	if _, err := s.Import(ctx, writeLayout(t, idx, ""), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	check := func() []core.Problem {
		var ps []core.Problem
		if err := s.Check(ctx, func(p core.Problem) { ps = append(ps, p) }); err != nil {
			t.Fatal(err)
		}
		return ps
	}
	if ps := check(); len(ps) != 0 {
		t.Fatalf("clean store: %v", ps)
	}
	layers, _ := amd.Layers()
	l0, _ := layers[0].Digest()
	l1, _ := layers[1].Digest()
	os.Truncate(s.blobPath(l0.String()), 10)
	os.Remove(s.blobPath(l1.String()))
	ps := check()
	var all []string
	for _, p := range ps {
		all = append(all, p.Where+": "+p.What)
	}
	joined := strings.Join(all, "\n")
	if !strings.Contains(joined, l0.String()+" has 10 bytes") || !strings.Contains(joined, l1.String()+" is missing") {
		t.Errorf("problems:\n%s", joined)
	}
	cfg, _ := amd.ConfigName()
	flipByte(t, s.blobPath(cfg.String()))
	if ps := check(); !strings.Contains(joinProblems(ps), "config blob in the store: digest mismatch: expected "+cfg.String()) {
		t.Errorf("a changed config is not reported: %v", ps)
	}
}

func joinProblems(ps []core.Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.What + "\n")
	}
	return b.String()
}
