package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/runprov/runprov/core"
)

// PutInventory stores the packages of an image config, once: a second
// inventory of the same config is ignored (content-addressed, it is the
// same).
func (s *Store) PutInventory(ctx context.Context, inv *core.Inventory) error {
	if inv.Created.IsZero() {
		inv.Created = s.now()
	}
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO image_inventories(config_digest, created, packages) VALUES(?, ?, ?)`,
			inv.ConfigDigest, timeText(inv.Created), len(inv.Packages))
		if err != nil {
			return fmt.Errorf("store inventory of %s: %w", inv.ConfigDigest, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO image_packages(config_digest, ecosystem, name, version, arch, license, purl, location)
			VALUES(?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, p := range inv.Packages {
			if _, err := stmt.ExecContext(ctx, inv.ConfigDigest, p.Ecosystem, p.Name, p.Version, p.Arch, p.License, p.PURL, p.Location); err != nil {
				return fmt.Errorf("store package %s of %s: %w", p.Name, inv.ConfigDigest, err)
			}
		}
		return nil
	})
}

// Inventory returns the stored packages of an image config, sorted by
// ecosystem, name, version and location; an error wrapping
// core.ErrNotFound when the image was never inventoried.
func (s *Store) Inventory(ctx context.Context, configDigest string) (*core.Inventory, error) {
	inv := &core.Inventory{ConfigDigest: configDigest, Packages: []core.Package{}}
	var created string
	err := s.db.QueryRowContext(ctx, `SELECT created FROM image_inventories WHERE config_digest = ?`, configDigest).Scan(&created)
	// A store opened read-only before its migration to 0011 has no table:
	// no inventory either.
	if errors.Is(err, sql.ErrNoRows) || (err != nil && strings.Contains(err.Error(), "no such table")) {
		return nil, fmt.Errorf("inventory of image config %s: %w", configDigest, core.ErrNotFound)
	}
	if err != nil {
		return nil, mapErr(err)
	}
	inv.Created = parseTime(created)
	rows, err := s.db.QueryContext(ctx, `SELECT ecosystem, name, version, arch, license, purl, location FROM image_packages
		WHERE config_digest = ? ORDER BY ecosystem, name, version, location, arch`, configDigest)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		var p core.Package
		if err := rows.Scan(&p.Ecosystem, &p.Name, &p.Version, &p.Arch, &p.License, &p.PURL, &p.Location); err != nil {
			return nil, err
		}
		inv.Packages = append(inv.Packages, p)
	}
	return inv, mapErr(rows.Err())
}

// HasInventory reports whether the image config has an inventory: one
// indexed lookup, for the producer's check on every run.
func (s *Store) HasInventory(ctx context.Context, configDigest string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM image_inventories WHERE config_digest = ?`, configDigest).Scan(&n)
	if err != nil && strings.Contains(err.Error(), "no such table") {
		return false, nil
	}
	return n > 0, mapErr(err)
}
