package sbom

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/runprov/runprov/core"
)

// Images is what Service needs of the image store (drivers/image).
type Images interface {
	// Resolve resolves a digest or prefix (an index: to the manifest for
	// platform, "" = the host's); *core.ImageNotFoundError when absent.
	Resolve(ctx context.Context, digest, platform string) (*core.ResolvedImage, error)
	// Unpack unpacks a manifest's rootfs once and returns its directory.
	Unpack(ctx context.Context, manifestDigest string, p core.Progress) (dir string, reused bool, err error)
	// ScanLayers reads the layers' tar headers: setuid files,
	// world-writable directories, unpacked size.
	ScanLayers(ctx context.Context, manifestDigest string) (*core.LayerScan, error)
}

// Store keeps inventories (drivers/sqlite).
type Store interface {
	// Inventory returns the inventory of an image config; an error
	// wrapping core.ErrNotFound when there is none.
	Inventory(ctx context.Context, configDigest string) (*core.Inventory, error)
	// HasInventory reports whether an image config has one.
	HasInventory(ctx context.Context, configDigest string) (bool, error)
	// PutInventory stores one, once per config digest.
	PutInventory(ctx context.Context, inv *core.Inventory) error
}

// Service takes, keeps and reads image inventories, and checks images.
type Service struct {
	Images Images
	Store  Store
	// Read lists the packages of an unpacked rootfs (inventory.Read).
	Read func(ctx context.Context, rootfs string) ([]core.Package, error)
	// Probe looks up directories and caches in a rootfs (inventory.Probe).
	Probe func(ctx context.Context, rootfs string, dirs, caches []string) (*core.RootfsFacts, error)
	Log   *slog.Logger
}

// Inventory returns the inventory of img, taking it first (unpacking the
// image if need be) when the store has none for its config.
func (s *Service) Inventory(ctx context.Context, img *core.ResolvedImage, p core.Progress) (*core.Inventory, error) {
	inv, err := s.Store.Inventory(ctx, img.ConfigDigest)
	if err == nil || !errors.Is(err, core.ErrNotFound) {
		return inv, err
	}
	dir, _, err := s.Images.Unpack(ctx, img.ManifestDigest, p)
	if err != nil {
		return nil, err
	}
	return s.Take(ctx, img, dir)
}

// Take reads the packages of img's unpacked rootfs at dir and stores them,
// unless its config already has an inventory (then that is returned).
func (s *Service) Take(ctx context.Context, img *core.ResolvedImage, dir string) (*core.Inventory, error) {
	if inv, err := s.Store.Inventory(ctx, img.ConfigDigest); err == nil {
		return inv, nil
	} else if !errors.Is(err, core.ErrNotFound) {
		return nil, err
	}
	pkgs, err := s.Read(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("inventory of %s: %w", img.ManifestDigest, err)
	}
	if pkgs == nil {
		pkgs = []core.Package{}
	}
	inv := &core.Inventory{ConfigDigest: img.ConfigDigest, Packages: pkgs}
	if err := s.Store.PutInventory(ctx, inv); err != nil {
		return nil, err
	}
	return s.Store.Inventory(ctx, img.ConfigDigest)
}

// TakeUnpacked is Take for the producer, which has just unpacked the
// image: it never fails a run, only logs.
func (s *Service) TakeUnpacked(ctx context.Context, img *core.ResolvedImage, dir string) {
	if ok, err := s.Store.HasInventory(ctx, img.ConfigDigest); ok && err == nil {
		return
	}
	if _, err := s.Take(ctx, img, dir); err != nil && s.Log != nil {
		s.Log.Warn("could not take the image's package inventory", "image", img.ManifestDigest, "err", err)
	}
}
