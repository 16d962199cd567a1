package release

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/runprov/runprov/core"
)

// Pre-check rules, as findings name them.
const (
	RuleSensitivity = "sensitivity"
	RuleSize        = "max-size"
	RuleType        = "allowed-types"
	RuleRows        = "max-rows"
	RuleColumn      = "forbidden-column"
	RuleSmallCount  = "small-count"
	RuleFormat      = "format"
)

// maxSmallCounts is how many small counts of one file are listed one by one.
const maxSmallCounts = 20

// FileType is the lower-case extension of name, without the dot.
func FileType(name string) string {
	return strings.ToLower(strings.TrimPrefix(path.Ext(name), "."))
}

// Precheck runs the automatic checks on a file called name of size bytes;
// open reads it (only when its size and type allow). It returns the findings
// and, for CSV and TSV files, a summary of the table.
func Precheck(name string, size int64, open func() (io.ReadCloser, error), rules core.ReleaseRules) ([]Finding, *Table, error) {
	var out []Finding
	if size > rules.MaxBytes {
		out = append(out, Finding{File: name, Rule: RuleSize, Refuse: true,
			Detail: fmt.Sprintf("%d bytes, over the limit of %d (release_max_bytes)", size, rules.MaxBytes)})
	}
	typ := FileType(name)
	if !slices.Contains(rules.Types, typ) {
		out = append(out, Finding{File: name, Rule: RuleType, Refuse: true,
			Detail: fmt.Sprintf("type %q is not one that may leave (release_allowed_types: %s)", typ, strings.Join(rules.Types, ", "))})
	}
	if len(out) > 0 || (typ != "csv" && typ != "tsv") {
		return out, nil, nil
	}
	r, err := open()
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, rules.MaxBytes+1))
	if err != nil {
		return nil, nil, err
	}
	f, t := checkTable(name, data, typ == "tsv", rules)
	return append(out, f...), t, nil
}

// checkTable reads a CSV (or TSV) file whose first row names its columns.
func checkTable(name string, data []byte, tsv bool, rules core.ReleaseRules) ([]Finding, *Table) {
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	if tsv {
		cr.Comma = '\t'
	}
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &Table{}
	}
	if err != nil {
		return []Finding{{File: name, Rule: RuleFormat, Refuse: true, Detail: fmt.Sprintf("not a readable table: %v", err)}}, nil
	}
	t := &Table{}
	out, counts := checkHeader(name, header, t, rules)
	small := 0
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			out = append(out, Finding{File: name, Rule: RuleFormat, Refuse: true, Detail: fmt.Sprintf("not a readable table: %v", err)})
			break
		}
		t.Rows++
		row := t.Rows + 1 // the file's line, the header being line 1
		for i, v := range rec {
			if i >= len(t.Columns) {
				break
			}
			n, isNum := summarise(&t.Columns[i], v)
			if counts[i] && isNum && n > 0 && n < float64(rules.MinCount) {
				small++
				if small <= maxSmallCounts {
					out = append(out, Finding{File: name, Rule: RuleSmallCount, Where: fmt.Sprintf("row %d, column %d (%s)", row, i+1, t.Columns[i].Name),
						Detail: fmt.Sprintf("count %s is below %d (release_min_count)", strings.TrimSpace(v), rules.MinCount)})
				}
			}
		}
	}
	if small > maxSmallCounts {
		out = append(out, Finding{File: name, Rule: RuleSmallCount, Detail: fmt.Sprintf("%d more counts below %d", small-maxSmallCounts, rules.MinCount)})
	}
	if t.Rows > rules.MaxRows {
		out = append(out, Finding{File: name, Rule: RuleRows, Refuse: true,
			Detail: fmt.Sprintf("%d rows, over the limit of %d (release_max_rows): row-level data does not leave", t.Rows, rules.MaxRows)})
	}
	return out, t
}

// summarise adds v to c's summary and returns it as a number, if it is one.
func summarise(c *Column, v string) (float64, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		c.Empty++
		return 0, false
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil {
		c.Numeric, c.Min, c.Max = false, nil, nil
		return 0, false
	}
	if c.Numeric {
		if c.Min == nil || n < *c.Min {
			c.Min = &n
		}
		if c.Max == nil || n > *c.Max {
			m := n
			c.Max = &m
		}
	}
	return n, true
}

func matchAny(patterns []string, s string) string {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return p
		}
	}
	return ""
}

// Refusals are the findings that keep a file out of a request.
func Refusals(fs []Finding) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Refuse {
			out = append(out, f)
		}
	}
	return out
}

// checkHeader names t's columns, finds the forbidden ones and returns which
// hold counts.
func checkHeader(name string, header []string, t *Table, rules core.ReleaseRules) ([]Finding, map[int]bool) {
	var out []Finding
	counts := map[int]bool{}
	for i, h := range header {
		col := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		t.Columns = append(t.Columns, Column{Name: h, Numeric: true})
		if p := matchAny(rules.ForbiddenColumns, col); p != "" {
			out = append(out, Finding{File: name, Rule: RuleColumn, Refuse: true, Where: fmt.Sprintf("column %d (%s)", i+1, h),
				Detail: fmt.Sprintf("column name %q matches %q (release_forbidden_columns): it may identify people", h, p)})
		}
		if matchAny(rules.CountColumns, col) != "" {
			counts[i] = true
		}
	}
	return out, counts
}
