// Package consumer is the Consumer plugin: it takes a
// Runfile, validates it, commits it into a named git repository and hands
// the repository's .git, as a tarball, to the middleware together with the
// commit's index row, in one transaction. It also reads Runfiles back
// (cat), resolves commit prefixes, and checks repositories against their
// index (fsck).
//
// It knows git and SQLite only through core.RepoOpener and RepoStore.
package consumer
