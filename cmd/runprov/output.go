package main

import (
	"bufio"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/runprov/runprov/plugins/history"
)

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints rows as aligned columns, or as CSV with --csv. Listings with
// --json print their own structs instead.
type table struct {
	csv  bool
	out  io.Writer
	buf  *bufio.Writer // under tw: tabwriter writes each cell and its padding apart
	tw   *tabwriter.Writer
	cw   *csv.Writer
	cols int
}

func newTable(a *app, header ...string) *table {
	t := &table{csv: a.csv, out: a.stdout, cols: len(header)}
	if t.csv {
		t.cw = csv.NewWriter(a.stdout)
	} else {
		t.buf = bufio.NewWriterSize(a.stdout, 64<<10)
		t.tw = tabwriter.NewWriter(t.buf, 0, 4, 2, ' ', 0)
	}
	t.row(header...)
	return t
}

// cellSpaces keeps a cell on its line and in its column.
var cellSpaces = strings.NewReplacer("\t", " ", "\n", " ")

func (t *table) row(cells ...string) {
	if t.csv {
		t.cw.Write(cells)
		return
	}
	for i, c := range cells {
		if strings.ContainsAny(c, "\t\n") {
			cells[i] = cellSpaces.Replace(c)
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error {
	if t.csv {
		t.cw.Flush()
		return t.cw.Error()
	}
	if err := t.tw.Flush(); err != nil {
		return err
	}
	return t.buf.Flush()
}

// cellText renders a SQL value for a table or CSV cell: BLOBs as base64.
func cellText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// when formats a time for a table: history.TermTime on a terminal, RFC 3339
// in UTC with --csv (as JSON has it).
func (a *app) when(t time.Time) string {
	if a.csv {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	return history.TermTime(t)
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// shortDigest shows "sha256:" and the first 12 hex digits.
func shortDigest(d string) string {
	if algo, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return algo + ":" + hex[:12]
	}
	return d
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
