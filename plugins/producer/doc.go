// Package producer is the Producer plugin: it takes a
// Runfile commit, makes sure its image is present, verified and approved,
// runs it in a locked-down sandbox through a drivers/runtime Runtime and
// records the run (status, steps, logs, input and output manifests, host
// snapshot and drift).
//
// A run has three phases so that an executor on another node can take the
// middle one: Prepare (reads the store, writes STORE/runs/RUN and the
// running record), Execute (no database: runs the containers from the run
// directory's files) and Finish (stores the final record).
//
// It does not parse Runfiles (runfile), store anything itself (drivers/sqlite
// through RunWriter), collect host metadata (plugins/env through HostProbe)
// or print: cmd/runprov does.
//
// It imports drivers/runtime for the types a sandbox is made of (Runtime,
// Stdio, IDMap, the runtime-spec), not to construct a runtime: cmd/runprov
// hands it its runtimes.
package producer
