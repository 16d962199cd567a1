package sqlite

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
)

func TestInventoryOncePerConfig(t *testing.T) {
	ctx := context.Background()
	s := newImageTestStore(t)
	const cfg = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	if _, err := s.Inventory(ctx, cfg); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("before: %v, want ErrNotFound", err)
	}
	pkgs := []core.Package{
		{Ecosystem: "deb", Name: "bash", Version: "5.2", Arch: "amd64", PURL: "pkg:deb/debian/bash@5.2?arch=amd64", Location: "/var/lib/dpkg/status"},
		{Ecosystem: "pypi", Name: "numpy", Version: "1.24.2", License: "BSD", PURL: "pkg:pypi/numpy@1.24.2", Location: "/usr/lib/python3/dist-packages/numpy-1.24.2.dist-info"},
	}
	if ok, err := s.HasInventory(ctx, cfg); ok || err != nil {
		t.Fatalf("HasInventory before: %v %v", ok, err)
	}
	if err := s.PutInventory(ctx, &core.Inventory{ConfigDigest: cfg, Packages: pkgs}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.HasInventory(ctx, cfg); !ok || err != nil {
		t.Fatalf("HasInventory after: %v %v", ok, err)
	}
	// A second inventory of the same config changes nothing.
	if err := s.PutInventory(ctx, &core.Inventory{ConfigDigest: cfg, Packages: pkgs[:1]}); err != nil {
		t.Fatal(err)
	}
	inv, err := s.Inventory(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(inv.Packages, pkgs) {
		t.Errorf("got %+v, want %+v", inv.Packages, pkgs)
	}
}

// TestInventoryOldStore: a store not yet migrated to image_packages (as a
// read-only open leaves it) has no inventory, which is not an error.
func TestInventoryOldStore(t *testing.T) {
	s, _, err := Init(context.Background(), t.TempDir(), nil, Options{migrateTo: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Inventory(context.Background(), "sha256:"+strings.Repeat("c", 64)); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("inventory in a version 10 store: %v, want ErrNotFound", err)
	}
}
