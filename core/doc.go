// Package core is the centre of runprov: the domain types (repositories, commits,
// images, runs) and the sentinel and typed errors every layer matches with
// errors.Is and errors.As. It does not wire anything: cmd/runprov/wire.go
// builds the plugins and drivers of a process.
//
// Interfaces live in the package that uses them, with the methods it calls
// (plugins/consumer's RepoStore, plugins/producer's ImageStore and
// RunWriter, drivers/image's Records). core keeps only the git repository
// interfaces (GitRepo, RepoOpener, RepoSalvager) and RecordWriter: a driver
// method returns a GitRepo, or takes a function of a RecordWriter, so the
// type must be one both sides name.
//
// core imports only the standard library. It never imports plugins/ or drivers/
// (depcheck_test.go fails if it does): the dependencies point inwards.
//
// The layers around it: runfile imports core; drivers/ import core and their
// one outside dependency; plugins/ import core, runfile and the interfaces
// they declare, and two of them import a driver package for its types:
// plugins/producer uses drivers/runtime's Runtime, Stdio, IDMap and spec
// types (a run's sandbox is made of them, and faking them would copy the
// runtime-spec), and plugins/slurm uses drivers/slurm's job states when it
// asks the scheduler about runs. No plugin constructs a driver: cmd/runprov
// does, in wire.go.
package core
