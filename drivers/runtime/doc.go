// Package runtime is the container runtime driver: it turns what a run needs
// (a root filesystem, mounts, a user, limits) into an OCI runtime spec
// (github.com/opencontainers/runtime-spec) with a pure function, and runs
// that spec with runc (the default; it is in Debian) or Charliecloud's
// ch-run. Runtimes sit behind one small interface, Runtime.
//
// It does not resolve Runfiles or images, write run records or hash files:
// plugins/producer does that and hands this package a bundle directory.
package runtime
