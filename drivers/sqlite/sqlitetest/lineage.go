package sqlitetest

import (
	"context"
	"database/sql"
	"fmt"
)

// Synthetic lineage: manifests for the runs InsertSynthetic writes bare,
// 10 files a run, so that trace can be measured on a store of 1,000,000
// file rows. Run i has 8 outputs (OutputSHA(i, j)); its inputs are the
// shared config (ConfigSHA, every run reads it) and, for i >= ChainStep,
// output 0 of run i-ChainStep, else raw data (RawSHA(i)): chains of runs
// ChainStep apart, each starting at raw data.
const (
	LineageOutputs = 8
	ChainStep      = 100
)

// OutputSHA is the content of output j of synthetic run i.
func OutputSHA(i, j int) string { return fmt.Sprintf("%016x%016x%016x%016x", 1, i, j, 0) }

// RawSHA is the raw data synthetic run i < ChainStep reads.
func RawSHA(i int) string { return fmt.Sprintf("%016x%016x%016x%016x", 3, i, 0, 0) }

// ConfigSHA is the content every synthetic run reads.
var ConfigSHA = fmt.Sprintf("%064x", 2)

// InsertLineageFiles writes the manifests above for runs first..first+n-1,
// generated inside SQLite in one transaction.
func InsertLineageFiles(ctx context.Context, db *sql.DB, first, n int) error {
	// printf mirrors RunID, OutputSHA, RawSHA and ConfigSHA.
	const runID = `printf('%08x%024x', (i * 2654435761) & 4294967295, i)`
	q := `INSERT INTO run_files (run_id, kind, name, path, size, sha256)
	WITH RECURSIVE seq(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM seq WHERE i < ?),
		outs(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM outs WHERE j < ?)
	SELECT ` + runID + `, 'output', '/safe_outputs', printf('out/%02d.txt', j), 1000 + j, printf('%016x%016x%016x%016x', 1, i, j, 0) FROM seq, outs
	UNION ALL
	SELECT ` + runID + `, 'input', 'config', 'config.json', 100, ? FROM seq
	UNION ALL
	SELECT ` + runID + `, 'input', 'data', 'table.csv', 1000,
		CASE WHEN i >= ? THEN printf('%016x%016x%016x%016x', 1, i - ?, 0, 0) ELSE printf('%016x%016x%016x%016x', 3, i, 0, 0) END FROM seq`
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// The content index is built once after the fill, as insertBare does.
	var def string
	if err := tx.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'run_files_content'`).Scan(&def); err != nil {
		return fmt.Errorf("find the content index: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DROP INDEX run_files_content`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, q, first, first+n-1, LineageOutputs-1, ConfigSHA, ChainStep, ChainStep); err != nil {
		return fmt.Errorf("insert synthetic manifests: %w", err)
	}
	if _, err := tx.ExecContext(ctx, def); err != nil {
		return err
	}
	return tx.Commit()
}
