// Package git is the git driver, on github.com/go-git/go-git/v5: it restores a
// Runfile repository from its container_run_commands tarball into a private
// directory, commits to it with git plumbing (no worktree is ever checked
// out), keeps its object store compact, and archives it back.
//
// It does not validate Runfiles (plugins/consumer does) and never keeps a
// remote or a credential in the repository it archives.
package git
