// Package core is the centre of runprov: the domain types (repositories, commits,
// images, runs), the interfaces that plugins and drivers fill, and the sentinel
// and typed errors every layer matches with errors.Is and errors.As. It does not
// wire anything: cmd/runprov/wire.go builds the plugins and drivers of a process.
//
// core imports only the standard library. It never imports plugins/ or drivers/
// (depcheck_test.go fails if it does): the dependencies point inwards.
package core
