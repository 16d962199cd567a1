package sqlite

import (
	"context"
	"fmt"

	"github.com/runprov/runprov/core"
)

// putRunDevices stores the CDI devices and spec files of r. They are known
// when the run is created and never change; a repeat is idempotent.
func putRunDevices(ctx context.Context, tx querier, r *core.Run) error {
	const q = `INSERT OR REPLACE INTO run_devices(run_id, kind, idx, name, sha256) VALUES(?, ?, ?, ?, ?)`
	for i, d := range r.Devices {
		if _, err := tx.ExecContext(ctx, q, r.ID, "device", i, d, ""); err != nil {
			return fmt.Errorf("store device %s of run %s: %w", d, r.ID, err)
		}
	}
	for i, s := range r.CDISpecs {
		if _, err := tx.ExecContext(ctx, q, r.ID, "cdi_spec", i, s.Path, s.SHA256); err != nil {
			return fmt.Errorf("store cdi spec %s of run %s: %w", s.Path, r.ID, err)
		}
	}
	return nil
}

// loadRunDevices reads what putRunDevices stored; nil slices when none.
func (s *Store) loadRunDevices(ctx context.Context, r *core.Run) error {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, name, sha256 FROM run_devices WHERE run_id = ? ORDER BY kind DESC, idx`, r.ID)
	if err != nil {
		return fmt.Errorf("read devices of run %s: %w", r.ID, mapErr(err))
	}
	defer rows.Close()
	r.Devices, r.CDISpecs = nil, nil
	for rows.Next() {
		var kind, name, sum string
		if err := rows.Scan(&kind, &name, &sum); err != nil {
			return fmt.Errorf("read devices of run %s: %w", r.ID, err)
		}
		if kind == "device" {
			r.Devices = append(r.Devices, name)
		} else {
			r.CDISpecs = append(r.CDISpecs, core.CDISpec{Path: name, SHA256: sum})
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read devices of run %s: %w", r.ID, mapErr(err))
	}
	return nil
}
