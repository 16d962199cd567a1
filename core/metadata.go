package core

import (
	"context"
	"fmt"
)

// ColumnType is the type of a metadata column, as DSI types its tables.
type ColumnType int

const (
	TypeText ColumnType = iota
	TypeInt
	TypeReal
	TypeBool
	TypeJSON // a value marshalled as JSON text
)

// Column is one typed column of a metadata table.
type Column struct {
	Name string
	Type ColumnType
}

// Table is a DSI metadata table: typed columns and rows of values in column
// order. Plugins fill tables; drivers store them.
type Table struct {
	Name    string
	Columns []Column
	Rows    [][]any
}

// Append adds a row; it returns an error if the row has the wrong width.
func (t *Table) Append(row ...any) error {
	if len(row) != len(t.Columns) {
		return fmt.Errorf("table %s: row has %d values, want %d", t.Name, len(row), len(t.Columns))
	}
	t.Rows = append(t.Rows, row)
	return nil
}

// Collection is the ordered set of tables that flows from plugins to drivers
// in one transload.
type Collection struct {
	tables []*Table
}

// Add appends t, replacing a table of the same name.
func (c *Collection) Add(t *Table) {
	for i, old := range c.tables {
		if old.Name == t.Name {
			c.tables[i] = t
			return
		}
	}
	c.tables = append(c.tables, t)
}

// Table returns the table named name, or nil.
func (c *Collection) Table(name string) *Table {
	for _, t := range c.tables {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Tables returns the tables in the order they were added.
func (c *Collection) Tables() []*Table { return c.tables }

// Collector is a plugin that produces metadata (DSI's "reader" plugins):
// Environment, Hostname, SystemKernel. Collect adds its tables to col. A
// collector records the failure of one source inside its tables instead of
// failing as a whole; an error return means nothing useful was collected.
type Collector interface {
	Component
	Collect(ctx context.Context, col *Collection) error
}
