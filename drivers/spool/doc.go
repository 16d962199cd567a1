// Package spool keeps the release spool on disk: the directory between
// analysts and output checkers that holds release requests (a snapshot of
// each requested file, content-addressed, with the evidence that came with
// it), the checkers' votes (one file each) and the append-only log, whose
// entries are numbered files that each name the hash of the one before.
//
// Every file is written to a temporary name and then linked or renamed into
// place, so a reader never sees half a file and two writers never take the
// same name; what is written is made read-only. It does not sign, verify or
// decide anything: plugins/release does, from the bytes kept here.
package spool
