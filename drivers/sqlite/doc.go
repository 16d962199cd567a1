// Package sqlite is the middleware: the SQLite database at STORE/runprov.db,
// through modernc.org/sqlite (pure Go, no cgo). It keeps the Runfile
// repositories (their .git tarballs in the container_run_commands column), the
// commit index and the DSI environment tables, with versioned migrations.
//
// It is a driver: it stores what plugins hand it and answers queries; it does
// not parse Runfiles, run git or start containers.
package sqlite
