package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newQueryCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "query SQL",
		Short: "Run read-only SQL on the store's database",
		Long: `Run one read-only SQL statement on the store's SQLite database and print the
result as a table (default), --json (an array of objects) or --csv.
Statements that would write (INSERT, UPDATE, DELETE, CREATE, DROP, ATTACH,
PRAGMAs that set, transactions) are refused, as are several statements; the
database is also opened read-only. BLOB values are printed as base64. The tables are documented in
README.md ("Tables").

Example:
  runprov query "SELECT hash, path, image_digest FROM commits WHERE path LIKE '%analysis%'"`,
		Args: exactArgs("query", "which SQL? like: runprov query \"SELECT id, status FROM runs\" (quote it as one argument)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := a.openRead(cmd.Context()); err != nil {
				return err
			}
			var w interface {
				Header([]string) error
				Row([]any) error
				Close() error
			}
			switch {
			case a.json:
				w = &jsonRows{out: a.stdout}
			default:
				w = &tableRows{a: a}
			}
			if err := a.store.Query(cmd.Context(), args[0], w); err != nil {
				return err
			}
			return w.Close()
		},
	}
}

// tableRows prints a query result as a table or CSV.
type tableRows struct {
	a *app
	t *table
}

func (r *tableRows) Header(cols []string) error { r.t = newTable(r.a, cols...); return nil }
func (r *tableRows) Row(vals []any) error {
	cells := make([]string, len(vals))
	for i, v := range vals {
		cells[i] = cellText(v)
	}
	r.t.row(cells...)
	return nil
}
func (r *tableRows) Close() error {
	if r.t == nil {
		return nil
	}
	return r.t.flush()
}

// jsonRows streams a query result as a JSON array of objects, one per row,
// keys in column order.
type jsonRows struct {
	out  io.Writer
	cols []string
	n    int
}

func (r *jsonRows) Header(cols []string) error {
	r.cols = cols
	_, err := io.WriteString(r.out, "[")
	return err
}

func (r *jsonRows) Row(vals []any) error {
	sep := ",\n  "
	if r.n == 0 {
		sep = "\n  "
	}
	r.n++
	if _, err := io.WriteString(r.out, sep+"{"); err != nil {
		return err
	}
	for i, v := range vals {
		k, _ := json.Marshal(r.cols[i])
		val, err := json.Marshal(v) // []byte marshals as base64
		if err != nil {
			return err
		}
		if i > 0 {
			io.WriteString(r.out, ", ")
		}
		fmt.Fprintf(r.out, "%s: %s", k, val)
	}
	_, err := io.WriteString(r.out, "}")
	return err
}

func (r *jsonRows) Close() error {
	end := "\n]\n"
	if r.n == 0 {
		end = "]\n"
	}
	if r.cols == nil {
		end = "[]\n"
	}
	_, err := io.WriteString(r.out, end)
	return err
}
