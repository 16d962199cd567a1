// Package core is the centre of runprov: the domain types (repositories, commits,
// images, runs), the interfaces that plugins and drivers fill, the Terminal that
// wires them together, the metadata collection that plugins hand to drivers, and
// the sentinel errors every layer matches with errors.Is.
//
// core imports only the standard library. It never imports plugins/ or drivers/
// (depcheck_test.go fails if it does): the dependencies point inwards.
package core
