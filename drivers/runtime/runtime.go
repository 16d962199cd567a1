package runtime

import (
	"context"
	"io"
	"syscall"
)

// Stdio is where a container's standard streams go. Nil readers and writers
// are /dev/null.
type Stdio struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Guarantees are the parts of the sandbox a runtime can enforce. The
// producer refuses a run whose Runfile needs one the runtime lacks, unless
// the user allows a weaker sandbox (and the run records it).
type Guarantees struct {
	ReadOnlyBinds   bool // INPUTs mounted read-only
	NetworkIsolated bool // a network namespace with loopback only
	Seccomp         bool // the seccomp deny-list
	Cgroups         bool // LIMITs as cgroup limits
	UserMapping     bool // the process runs as the Runfile's USER in a user namespace
	// RootlessOverlay: without root, the runtime mounts an overlay of the
	// image in its own user namespace, so runs never write to the image.
	RootlessOverlay bool
	// RunsAsCaller: the container's user is the caller on the host, so
	// files the run writes need no change of owner.
	RunsAsCaller bool
	// Devices: the runtime creates the device nodes and edits of CDI
	// devices from the spec.
	Devices bool
}

// Runtime runs OCI bundles. Implementations: *Runc, *ChRun.
type Runtime interface {
	// Name is "runc" or "ch-run", as runs record it.
	Name() string
	// Version returns the runtime's version line, e.g. "1.1.5+ds1".
	Version(ctx context.Context) (string, error)
	// Guarantees says what the runtime's sandbox enforces.
	Guarantees() Guarantees
	// Run creates and starts the container id from the bundle directory
	// (which holds config.json), waits for its process and returns its exit
	// status (128+N when a signal N killed it). When ctx ends first the
	// container is killed and deleted before Run returns ctx's error. The
	// container is deleted when Run returns. err is only for failures of
	// the runtime itself (it could not start the container): exit is then -1.
	// A command that is not in the image, or cannot be executed, is such a
	// failure wrapping core.ErrCommandNotFound or core.ErrNotExecutable.
	Run(ctx context.Context, bundle, id string, stdio Stdio) (exit int, err error)
	// Kill sends sig to the container's process; a container that does not
	// exist is not an error.
	Kill(ctx context.Context, id string, sig syscall.Signal) error
	// Delete removes the container, killing it first if it runs; a
	// container that does not exist is not an error.
	Delete(ctx context.Context, id string) error
	// List returns the containers the runtime keeps state for (none for a
	// runtime whose containers are only processes).
	List(ctx context.Context) ([]Container, error)
}
