package sqlite

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/env"
)

func countRows(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSystemKernelSharedAcrossRuns: two collections on one host give one
// hash and, after two Puts, one row; the row's key columns are the
// snapshot's and it reads back whole.
func TestSystemKernelSharedAcrossRuns(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	rt := env.RuntimeInfo{Name: "runc", Version: "1.1.12"}
	a := env.CollectSystemKernel(ctx, rt)
	b := env.CollectSystemKernel(ctx, rt)
	if a.SHA256() != b.SHA256() {
		t.Fatalf("two collections differ: %s", env.Compare(a, b).Summary())
	}
	shaA, err := s.PutSystemKernel(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	shaB, err := s.PutSystemKernel(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if shaA != shaB || shaA != a.SHA256() {
		t.Fatalf("Put returned %s and %s, snapshot hash %s", shaA, shaB, a.SHA256())
	}
	if n := countRows(t, s, "system_kernels"); n != 1 {
		t.Fatalf("%d system_kernels rows after two Puts of one host, want 1", n)
	}
	var release, runtimeVersion string
	var cpus int
	if err := s.db.QueryRow(`SELECT kernel_release, runtime_version, cpu_count FROM system_kernels WHERE sha256 = ?`, shaA).
		Scan(&release, &runtimeVersion, &cpus); err != nil {
		t.Fatal(err)
	}
	if release != a.KernelRelease || runtimeVersion != "1.1.12" || cpus != a.CPUCount {
		t.Errorf("key columns %q %q %d, snapshot %q %q %d", release, runtimeVersion, cpus, a.KernelRelease, a.Runtime.Version, a.CPUCount)
	}
	got, err := s.SystemKernel(ctx, shaA)
	if err != nil {
		t.Fatal(err)
	}
	if got.SHA256() != shaA || len(got.Sysctls) != len(a.Sysctls) || got.KernelRelease != a.KernelRelease {
		t.Errorf("read back a different snapshot: %s", env.Compare(a, got).Summary())
	}
	// The snapshot is queryable as JSON, for runprov query.
	var swappiness string
	if err := s.db.QueryRow(`SELECT json_extract(snapshot, '$.sysctls."vm.swappiness"') FROM system_kernels`).Scan(&swappiness); err != nil || swappiness != a.Sysctls["vm.swappiness"] {
		t.Errorf("json_extract vm.swappiness = %q, %v; want %q", swappiness, err, a.Sysctls["vm.swappiness"])
	}

	other := *a
	other.Runtime.Version = "1.1.13"
	if sha, _ := s.PutSystemKernel(ctx, &other); sha == shaA || countRows(t, s, "system_kernels") != 2 {
		t.Errorf("another runtime version: hash %s, %d rows; want a second row", sha, countRows(t, s, "system_kernels"))
	}
}

func TestSystemKernelErrors(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.SystemKernel(ctx, "00"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("missing snapshot: %v, want ErrNotFound", err)
	}
	if _, err := s.Environment(ctx, "00"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("missing environment: %v, want ErrNotFound", err)
	}
	sha, err := s.PutSystemKernel(ctx, &core.SystemKernel{KernelRelease: "6.1.0-1", Sysctls: map[string]string{"vm.swappiness": "60"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`UPDATE system_kernels SET snapshot = replace(snapshot, '60', '10')`); err != nil {
		t.Fatal(err)
	}
	var dm *core.DigestMismatchError
	if _, err := s.SystemKernel(ctx, sha); !errors.As(err, &dm) || !errors.Is(err, core.ErrCorrupt) {
		t.Errorf("tampered snapshot: %v, want a digest mismatch", err)
	}
	esha, err := s.PutEnvironment(ctx, core.Environment{UID: 1000, GID: 1000, User: "alice", Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`UPDATE environments SET uid = 0`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Environment(ctx, esha); !errors.Is(err, core.ErrCorrupt) {
		t.Errorf("tampered environment: %v, want ErrCorrupt", err)
	}
}

func TestEnvironmentStore(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	e, err := env.CollectEnvironment()
	if err != nil {
		t.Fatal(err)
	}
	sha, err := s.PutEnvironment(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := env.CollectEnvironment()
	if sha2, err := s.PutEnvironment(ctx, again); err != nil || sha2 != sha {
		t.Fatalf("second Put: %s, %v; want %s", sha2, err, sha)
	}
	if n := countRows(t, s, "environments"); n != 1 {
		t.Fatalf("%d environments rows, want 1", n)
	}
	got, err := s.Environment(ctx, sha)
	if err != nil {
		t.Fatal(err)
	}
	if got.SHA256() != sha || got.UID != e.UID || got.Hostname != e.Hostname || got.User != e.User || len(got.Groups) != len(e.Groups) {
		t.Errorf("read back %+v, stored %+v", got, e)
	}
	// Group order is not identity.
	x, _ := s.PutEnvironment(ctx, core.Environment{UID: 1, Groups: []int{3, 1, 2}})
	y, _ := s.PutEnvironment(ctx, core.Environment{UID: 1, Groups: []int{1, 2, 3}})
	if x != y || countRows(t, s, "environments") != 2 {
		t.Errorf("group order made a new row: %s vs %s", x, y)
	}
}

func TestLastSystemKernel(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	put := func(release string) string {
		sha, err := s.PutSystemKernel(ctx, &core.SystemKernel{KernelRelease: release})
		if err != nil {
			t.Fatal(err)
		}
		return sha
	}
	old, cur := put("6.1.0-1"), put("6.1.0-2")
	for i, r := range []struct{ id, commit, sha string }{
		{"r1", "c1", old}, {"r2", "c1", cur}, {"r3", "c2", old}, {"r4", "c1", ""},
	} {
		_, err := s.db.Exec(`INSERT INTO runs(id, repo, path, commit_hash, runfile_blob, image_ref, image_digest, user, runtime,
			status, created_at, system_kernel_sha256) VALUES(?, 'default', 'Runfile', ?, 'b', 'i', 'sha256:00', '65534:65534', 'runc',
			'succeeded', ?, ?)`, r.id, r.commit, fmt.Sprintf("2025-01-01T00:00:0%dZ", i), r.sha)
		if err != nil {
			t.Fatal(err)
		}
	}
	if k, err := s.LastSystemKernel(ctx, "c1", "r5"); err != nil || k.KernelRelease != "6.1.0-2" {
		t.Errorf("last of c1: %+v, %v; want 6.1.0-2 (r4 has no snapshot)", k, err)
	}
	if k, err := s.LastSystemKernel(ctx, "c1", "r2"); err != nil || k.KernelRelease != "6.1.0-1" {
		t.Errorf("last of c1 except r2: %+v, %v; want 6.1.0-1", k, err)
	}
	if _, err := s.LastSystemKernel(ctx, "c3", ""); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("commit without runs: %v, want ErrNotFound", err)
	}
}
