// Package history is what runprov knows about past runs, as pure functions
// over recorded runs: the differences between two runs (diff), the verdict
// of a reproduction, and the exports of one run as an in-toto Statement with
// SLSA provenance, as W3C PROV-JSON and as an RO-Crate (Process Run Crate),
// and the lineage of content across runs (trace, report).
//
// It reads nothing itself: the CLI loads runs, Runfiles and SystemKernel
// snapshots from the store and hands them in, and writes what it returns.
// The exceptions read through narrow interfaces: Checker, the runs' part of
// runprov fsck (CheckStore), and Trace and ReportLineage, which find runs by
// the content of their files (TraceStore). WriteReport renders one
// self-contained HTML report.
package history
