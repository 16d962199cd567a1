package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"modernc.org/libc"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/runprov/runprov/core"
)

// RowWriter receives the result of Query: the column names once, then rows.
type RowWriter interface {
	Header(cols []string) error
	Row(vals []any) error
}

// schemaPragmas describe the schema, which users of `runprov query` need to
// find their way; their argument is a table or index name. valuePragmas may
// be read but never set (a set has the new value as argument).
var (
	schemaPragmas = map[string]bool{
		"table_info": true, "table_xinfo": true, "table_list": true, "index_list": true,
		"index_info": true, "index_xinfo": true, "foreign_key_list": true,
		"database_list": true, "collation_list": true, "function_list": true,
	}
	valuePragmas = map[string]bool{"user_version": true, "schema_version": true}
)

// readOnlyAuthorizer allows what a SELECT needs and denies everything else
// at compile time, so a writing statement never runs: INSERT/UPDATE/DELETE,
// DDL, ATTACH (which could create files), transactions, and PRAGMAs that set.
func readOnlyAuthorizer(action sqlite.AuthorizerActionCode, arg1, arg2, _, _ string) sqlite.AuthorizerReturnCode {
	switch action {
	case sqlite.AuthSelect, sqlite.AuthRead, sqlite.AuthFunction, sqlite.AuthRecursive:
		return sqlite.AuthorizerOK
	case sqlite.AuthPragma:
		name := strings.ToLower(arg1)
		if schemaPragmas[name] || (valuePragmas[name] && arg2 == "") {
			return sqlite.AuthorizerOK
		}
	}
	return sqlite.AuthorizerDeny
}

// Query runs one read-only SQL statement and streams its result to w. A
// statement that would write, or any statement the authorizer refuses, is
// refused with an error wrapping core.ErrReadOnly; the database is also
// opened read-only, so even a gap in the authorizer could not write. More
// than one statement is refused with an error wrapping core.ErrInvalid.
func (s *Store) Query(ctx context.Context, query string, w RowWriter) error {
	n, err := countStatements(query)
	if err != nil {
		return err
	}
	if n > 1 {
		return fmt.Errorf("%w: runprov query runs one SQL statement at a time; this holds %d", core.ErrInvalid, n)
	}
	db, err := sql.Open("sqlite", s.readDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return mapErr(err)
	}
	defer conn.Close()
	if err := conn.Raw(func(dc any) error {
		ra, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return fmt.Errorf("sqlite driver has no authorizer")
		}
		return ra.RegisterAuthorizer(readOnlyAuthorizer)
	}); err != nil {
		return err
	}
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		if strings.Contains(err.Error(), "not authorized") || strings.Contains(err.Error(), "readonly") {
			return fmt.Errorf("%w: runprov query runs read-only SQL (SELECT, read-only PRAGMAs); this statement would change the store or is not allowed: %v", core.ErrReadOnly, err)
		}
		return fmt.Errorf("query: %w", mapErr(err))
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	if err := w.Header(cols); err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if err := w.Row(vals); err != nil {
			return err
		}
	}
	return mapErr(rows.Err())
}

// countStatements counts the statements in query, not counting empty ones
// (only whitespace and comments). The driver runs every statement of a
// script and does not say where the first one ends, so the query is split
// where SQLite's own sqlite3_complete says a statement ends: semicolons in
// strings, quoted names, comments and trigger bodies do not count.
func countStatements(query string) (int, error) {
	tls := libc.NewTLS()
	defer tls.Close()
	complete := func(sql string) (bool, error) {
		p, err := libc.CString(sql)
		if err != nil {
			return false, err
		}
		defer libc.Xfree(tls, p)
		return sqlite3.Xsqlite3_complete(tls, p) == 1, nil
	}
	n := 0
	for rest := query; ; {
		end := -1
		for i := strings.IndexByte(rest, ';'); i >= 0 && end < 0; {
			ok, err := complete(rest[:i+1])
			if err != nil {
				return 0, err
			}
			if ok {
				end = i
			} else if j := strings.IndexByte(rest[i+1:], ';'); j >= 0 {
				i += 1 + j
			} else {
				break
			}
		}
		stmt := rest
		if end >= 0 {
			stmt = rest[:end]
		}
		// After a semicolon only whitespace and comments keep it complete;
		// the newline ends a last "--" comment, which is otherwise pending.
		empty, err := complete(";" + stmt + "\n")
		if err != nil {
			return 0, err
		}
		if !empty {
			n++
		}
		if end < 0 {
			return n, nil
		}
		rest = rest[end+1:]
	}
}
