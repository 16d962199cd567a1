// Package release is the release airlock: output checking between analysts
// and output checkers, who never share a store. An analyst's request puts
// snapshots of a run's moderate output files, the run's signed record and
// the automatic pre-check findings into the release spool; checkers vote on
// it there with their signing keys; export verifies every signature, the
// votes and the site policy's rules before it writes the approved files with
// a signed in-toto Statement and a Five Safes RO-Crate. Every request, view,
// vote and export is appended to the spool's hash-chained log.
//
// It reads and writes through the interfaces it declares: Spool (the
// directory, drivers/spool), Signer and Verifier (DSSE, drivers/dsse). It
// neither opens stores nor reads keys: the CLI hands it runs and keys.
package release
