package sqlite

import (
	"context"
	"fmt"

	"github.com/runprov/runprov/core"
)

// Check verifies for runprov fsck: rows whose foreign key
// points at nothing (run_steps and run_files of a run that does not exist,
// commits of a missing repo). runprov opens every connection with foreign
// keys on, so such rows come only from writes that bypassed it (the sqlite3
// shell has foreign keys off by default). The runs themselves are checked
// by the runs plugin (plugins/history.Checker).
func (s *Store) Check(ctx context.Context, report func(core.Problem)) error {
	rows, err := s.db.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return fmt.Errorf("foreign key check: %w", mapErr(err))
	}
	type orphan struct{ table, parent string }
	var (
		order  []orphan
		counts = map[orphan]int{}
	)
	for rows.Next() {
		var (
			o     orphan
			rowid any
			fkid  int
		)
		if err := rows.Scan(&o.table, &rowid, &o.parent, &fkid); err != nil {
			rows.Close()
			return fmt.Errorf("foreign key check: %w", err)
		}
		if counts[o] == 0 {
			order = append(order, o)
		}
		counts[o]++
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("foreign key check: %w", err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("foreign key check: %w", err)
	}
	for _, o := range order {
		if o.parent == "runs" && (o.table == "run_steps" || o.table == "run_files") {
			if err := s.reportOrphanRunRows(ctx, o.table, report); err != nil {
				return err
			}
			continue
		}
		report(core.Problem{Where: "table " + o.table,
			What: fmt.Sprintf("%d row(s) refer to %s rows that do not exist", counts[o], o.parent)})
	}
	return s.checkSignedApprovals(ctx, report)
}

// reportOrphanRunRows names each missing run that rows of table (run_steps
// or run_files, a fixed name, never user input) refer to.
func (s *Store) reportOrphanRunRows(ctx context.Context, table string, report func(core.Problem)) error {
	rows, err := s.db.QueryContext(ctx, `SELECT run_id, count(*) FROM `+table+`
		WHERE run_id NOT IN (SELECT id FROM runs) GROUP BY run_id ORDER BY run_id`)
	if err != nil {
		return fmt.Errorf("check %s: %w", table, mapErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id string
			n  int
		)
		if err := rows.Scan(&id, &n); err != nil {
			return fmt.Errorf("check %s: %w", table, err)
		}
		report(core.Problem{Where: "run " + id,
			What: fmt.Sprintf("%d %s row(s) of a run that does not exist", n, table)})
	}
	return rows.Err()
}
