package core

// Remote names a git remote for one push, pull or add --from. It lives only
// as long as the call: it is never stored in the middleware, in a tarball's
// .git/config, or in a log line. Credentials are not part of it; the driver
// reads them from the environment at the time of the call.
type Remote struct {
	URL    string // file://, a plain path, http(s)://, ssh://, git:// or user@host:path
	SSHKey string // private key file for SSH; "" uses ssh-agent
}

// FileChange is a file a commit adds or changes.
type FileChange struct {
	Path string // slash-separated, relative to the repository root
	Blob string // git blob id of the new contents
}
