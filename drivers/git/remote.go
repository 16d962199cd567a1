package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"

	"github.com/runprov/runprov/core"
)

// Environment variables read at the time of each remote operation; nothing
// read from them is ever written anywhere.
const (
	EnvToken         = "RUNPROV_GIT_TOKEN"      // HTTP(S) password or token
	EnvUser          = "RUNPROV_GIT_USER"       // HTTP(S) user name for the token (default "runprov")
	EnvSSHPassphrase = "RUNPROV_SSH_PASSPHRASE" // passphrase of the --ssh-key file
)

// endpoint is a remote resolved for one call: the URL go-git gets, what
// messages may show, the credentials and every secret string to scrub.
type endpoint struct {
	url     string
	display string
	auth    transport.AuthMethod
	creds   string // where the credentials came from, for messages; "" for none
	secrets []string
}

var schemeRE = core.LazyRegexp(`^[a-zA-Z][a-zA-Z0-9+.-]*://`)

// newEndpoint parses r.URL and gathers credentials from the environment.
func newEndpoint(r core.Remote) (*endpoint, error) {
	raw := strings.TrimSpace(r.URL)
	if raw == "" {
		return nil, fmt.Errorf("%w: empty remote URL: give file:///path, a path, https://host/repo.git or ssh://host/repo.git", core.ErrInvalid)
	}
	e := &endpoint{url: raw, secrets: []string{raw}}
	ep, err := transport.NewEndpoint(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: remote URL %s cannot be parsed: give file:///path, a path, https://host/repo.git or ssh://host/repo.git", core.ErrInvalid, redactURL(raw))
	}
	if ep.Password != "" {
		e.secrets = append(e.secrets, ep.Password, url.UserPassword(ep.User, ep.Password).String())
	}
	if u, err := url.Parse(raw); err == nil && u.RawQuery != "" {
		e.secrets = append(e.secrets, u.RawQuery)
	}
	switch ep.Protocol {
	case "file":
		p := ep.Path
		if !schemeRE().MatchString(raw) {
			// A plain path: git resolves it against the working directory.
			if p, err = filepath.Abs(raw); err != nil {
				return nil, err
			}
			e.url = p
			// As a file:// URL go-git finds the objects to push in the
			// local repository, not by walking the remote's object store
			// through an uncached storage (twice as fast for a small push).
			if !strings.ContainsAny(p, "#?%") {
				e.url = "file://" + p
			}
		}
		e.display = p
	case "http", "https":
		e.display = displayURL(ep.Protocol, ep)
		if err := e.httpAuth(ep); err != nil {
			return nil, err
		}
	case "ssh":
		e.display = displayURL("ssh", ep)
		if err := e.sshAuth(ep, r.SSHKey); err != nil {
			return nil, err
		}
	case "git":
		e.display = displayURL("git", ep)
	default:
		return nil, fmt.Errorf("%w: remote URL scheme %q is not supported: use file, http, https, ssh or git", core.ErrInvalid, ep.Protocol)
	}
	if r.SSHKey != "" && ep.Protocol != "ssh" {
		return nil, fmt.Errorf("%w: --ssh-key is for ssh:// remotes, and %s is not one", core.ErrInvalid, e.display)
	}
	return e, nil
}

// displayURL is scheme://host[:port]/path: no user, password or query.
func displayURL(scheme string, ep *transport.Endpoint) string {
	p, _, _ := strings.Cut(ep.Path, "?")
	return (&url.URL{Scheme: scheme, Host: hostPort(ep), Path: p}).String()
}

func hostPort(ep *transport.Endpoint) string {
	if ep.Port > 0 {
		return net.JoinHostPort(ep.Host, fmt.Sprint(ep.Port))
	}
	return ep.Host
}

// httpAuth: RUNPROV_GIT_TOKEN (user from the URL, RUNPROV_GIT_USER or
// "runprov"), else a password in the URL, else ~/.netrc ($NETRC).
func (e *endpoint) httpAuth(ep *transport.Endpoint) error {
	user := ep.User
	if user == "" {
		user = os.Getenv(EnvUser)
	}
	if user == "" {
		user = "runprov"
	}
	if tok := os.Getenv(EnvToken); tok != "" {
		e.auth, e.creds = &githttp.BasicAuth{Username: user, Password: tok}, EnvToken
		e.secrets = append(e.secrets, tok)
		return nil
	}
	if ep.Password != "" {
		e.auth, e.creds = &githttp.BasicAuth{Username: ep.User, Password: ep.Password}, "the URL"
		return nil
	}
	login, pass, file, err := netrcLookup(ep.Host)
	if err != nil {
		return err
	}
	if file != "" {
		e.auth, e.creds = &githttp.BasicAuth{Username: login, Password: pass}, file
		e.secrets = append(e.secrets, pass)
	}
	return nil
}

// sshAuth: the key file given with --ssh-key, else ssh-agent. Host keys are
// checked against ~/.ssh/known_hosts (go-git's default).
func (e *endpoint) sshAuth(ep *transport.Endpoint, keyFile string) error {
	user := ep.User
	if user == "" {
		user = "git"
	}
	if keyFile != "" {
		if _, err := os.Stat(keyFile); err != nil {
			return fmt.Errorf("%w: --ssh-key %s: %v", core.ErrInvalid, keyFile, err)
		}
		pass := os.Getenv(EnvSSHPassphrase)
		auth, err := gitssh.NewPublicKeysFromFile(user, keyFile, pass)
		if err != nil {
			return fmt.Errorf("%w: read SSH key %s: %v (a key with a passphrase needs %s)", core.ErrInvalid, keyFile, err, EnvSSHPassphrase)
		}
		if pass != "" {
			e.secrets = append(e.secrets, pass)
		}
		e.auth, e.creds = auth, "--ssh-key "+keyFile
		return nil
	}
	if os.Getenv("SSH_AUTH_SOCK") == "" {
		return fmt.Errorf("%w: no ssh-agent for %s (SSH_AUTH_SOCK is unset): start one and ssh-add a key, or give --ssh-key FILE", core.ErrInvalid, e.display)
	}
	auth, err := gitssh.NewSSHAgentAuth(user)
	if err != nil {
		return fmt.Errorf("connect to ssh-agent: %w", err)
	}
	e.auth, e.creds = auth, "ssh-agent"
	return nil
}

// remoteError is an error from a remote with every secret scrubbed from its
// text. It unwraps to core sentinels and context errors only, never to the
// transport's error, whose text may hold the URL or a credential.
type remoteError struct {
	msg string
	is  []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.is }

var userinfoRE = core.LazyRegexp(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@`)

// scrub removes credentials and userinfo from s.
func (e *endpoint) scrub(s string) string {
	secrets := append([]string(nil), e.secrets...)
	// Longest first, so a secret inside another is not left half replaced.
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		repl := "***"
		if sec == e.url || sec == strings.TrimSpace(e.url) {
			repl = e.display
		}
		s = strings.ReplaceAll(s, sec, repl)
	}
	return userinfoRE().ReplaceAllString(s, "$1")
}

// fail turns an error from go-git into a clear, scrubbed one.
func (e *endpoint) fail(ctx context.Context, what string, err error) error {
	re := &remoteError{}
	if ctx.Err() != nil {
		re.msg = fmt.Sprintf("%s %s: %v", what, e.display, ctx.Err())
		re.is = []error{ctx.Err()}
		return re
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired) && e.creds == "":
		re.msg = fmt.Sprintf("%s %s: the remote asks for credentials: set %s (and %s if the user is not %q) or add the host to ~/.netrc", what, e.display, EnvToken, EnvUser, "runprov")
	case errors.Is(err, transport.ErrAuthenticationRequired):
		re.msg = fmt.Sprintf("%s %s: the remote refused the credentials from %s: check the user and token", what, e.display, e.creds)
	case errors.Is(err, transport.ErrAuthorizationFailed):
		re.msg = fmt.Sprintf("%s %s: the remote denied access with the credentials from %s: check that they may access this repository", what, e.display, e.creds)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		re.msg = fmt.Sprintf("%s %s: no git repository there: check the URL (a bare repository is made with git init --bare)", what, e.display)
		re.is = []error{core.ErrNotFound}
	case errors.Is(err, syscall.ECONNREFUSED), errors.As(err, &dnsErr), errors.As(err, &opErr):
		re.msg = fmt.Sprintf("%s %s: cannot reach the remote (%s): check the URL and that the server is up", what, e.display, e.scrub(rootCause(err).Error()))
	case strings.Contains(err.Error(), "unable to authenticate"):
		re.msg = fmt.Sprintf("%s %s: the SSH server refused the key from %s: check the key and the user in the URL", what, e.display, e.creds)
	case strings.Contains(err.Error(), "knownhosts") || strings.Contains(err.Error(), "key mismatch"):
		re.msg = fmt.Sprintf("%s %s: the SSH host key is not known or does not match: check it and add it to ~/.ssh/known_hosts (ssh-keyscan)", what, e.display)
	case errors.Is(err, os.ErrNotExist) && strings.Contains(err.Error(), "git-"):
		re.msg = fmt.Sprintf("%s %s: local remotes need git's git-upload-pack and git-receive-pack: install git (apt-get install git)", what, e.display)
	default:
		re.msg = fmt.Sprintf("%s %s: %s", what, e.display, e.scrub(err.Error()))
	}
	return re
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// redactURL strips userinfo and query from a URL for messages, without
// needing it to parse.
func redactURL(raw string) string {
	s := userinfoRE().ReplaceAllString(raw, "$1")
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	return s
}

// remoteRefs lists the refs a remote advertised: hash refs by name, and
// the branch the remote's HEAD names ("" when it names none).
func remoteRefs(adv *packp.AdvRefs) (map[plumbing.ReferenceName]plumbing.Hash, plumbing.ReferenceName, error) {
	refs := map[plumbing.ReferenceName]plumbing.Hash{}
	if adv == nil {
		return refs, "", nil
	}
	all, err := adv.AllReferences()
	if err != nil {
		return nil, "", err
	}
	var head plumbing.ReferenceName
	var headHash plumbing.Hash
	for _, ref := range all {
		switch {
		case ref.Name() == plumbing.HEAD && ref.Type() == plumbing.SymbolicReference:
			head = ref.Target()
		case ref.Name() == plumbing.HEAD:
			headHash = ref.Hash()
		case ref.Type() == plumbing.HashReference:
			refs[ref.Name()] = ref.Hash()
		}
	}
	if head == "" && !headHash.IsZero() {
		// No symref capability: the branch with HEAD's commit, main first.
		var names []string
		for n, h := range refs {
			if h == headHash && n.IsBranch() {
				names = append(names, n.String())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			if head == "" || n == branchRef.String() {
				head = plumbing.ReferenceName(n)
			}
		}
	}
	return refs, head, nil
}

// Push implements core.GitRepo. One receive-pack session lists the
// remote's refs and takes the update, whose old value the remote checks,
// so a branch that moves in between is never overwritten.
func (r *Repo) Push(ctx context.Context, rem core.Remote, branch string, force bool) (string, error) {
	dst, err := branchName(branch)
	if err != nil {
		return "", err
	}
	e, err := newEndpoint(rem)
	if err != nil {
		return "", err
	}
	head, err := r.Head(ctx)
	if err != nil {
		return "", err
	}
	if head == "" {
		return "", &core.NameError{Kind: core.NameRepo, Err: fmt.Errorf("push: %w: the repo has no commits yet", core.ErrNotFound)}
	}
	sess, err := e.receivePack()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	adv, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return "", e.fail(ctx, "list refs of", err)
	}
	old := adv.References[dst.String()]
	if old.String() == head {
		return head, nil
	}
	if !old.IsZero() && !force {
		if ok, _ := r.IsAncestor(ctx, old.String(), head); !ok {
			return "", fmt.Errorf("push to %s: %w: the remote branch %s is at %s, which the local head %s does not contain",
				e.display, core.ErrNonFastForward, dst.Short(), short(old.String()), short(head))
		}
	}
	objs, err := r.pushObjects(ctx, plumbing.NewHash(head), old)
	if err != nil {
		return "", fmt.Errorf("push to %s: %w", e.display, err)
	}
	pack, err := r.encodePack(objs)
	if err != nil {
		return "", fmt.Errorf("push to %s: %w", e.display, err)
	}
	req := packp.NewReferenceUpdateRequestFromCapabilities(adv.Capabilities)
	req.Commands = []*packp.Command{{Name: dst, Old: old, New: plumbing.NewHash(head)}}
	req.Packfile = io.NopCloser(bytes.NewReader(pack))
	rs, err := sess.ReceivePack(ctx, req)
	if err == nil && rs != nil {
		err = rs.Error()
	}
	switch {
	case err == nil:
	case movedWhilePushing(err):
		return "", fmt.Errorf("push to %s: %w: the remote branch %s moved while pushing", e.display, core.ErrNonFastForward, dst.Short())
	default:
		return "", e.fail(ctx, "push to", err)
	}
	if old.IsZero() {
		return "", nil
	}
	return old.String(), nil
}

// movedWhilePushing recognises the remote's refusal of an update whose old
// value no longer holds.
func movedWhilePushing(err error) bool {
	msg := err.Error()
	for _, s := range []string{"non-fast-forward", "fetch first", "stale info", "failed to lock", "cannot lock"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// client is the transport for the endpoint's URL.
func (e *endpoint) client() (transport.Transport, *transport.Endpoint, error) {
	ep, err := transport.NewEndpoint(e.url)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: remote URL %s cannot be parsed", core.ErrInvalid, e.display)
	}
	c, err := client.NewClient(ep)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: remote URL %s: %s", core.ErrInvalid, e.display, e.scrub(err.Error()))
	}
	return c, ep, nil
}

// receivePack opens a session with the remote's receive-pack.
func (e *endpoint) receivePack() (transport.ReceivePackSession, error) {
	c, ep, err := e.client()
	if err != nil {
		return nil, err
	}
	sess, err := c.NewReceivePackSession(ep, e.auth)
	if err != nil {
		return nil, e.fail(context.Background(), "push to", err)
	}
	return sess, nil
}

func branchName(branch string) (plumbing.ReferenceName, error) {
	if branch == "" {
		branch = core.DefaultBranch
	}
	name := plumbing.NewBranchReferenceName(branch)
	if strings.HasPrefix(branch, "refs/") || name.Validate() != nil {
		return "", fmt.Errorf("%w: branch name %q: give a name like main or release/v1", core.ErrInvalid, branch)
	}
	return name, nil
}

// Fetch implements core.GitRepo. One upload-pack session lists the
// remote's refs and sends the objects; no ref or remote is written.
func (r *Repo) Fetch(ctx context.Context, rem core.Remote, ref string) (string, string, error) {
	e, err := newEndpoint(rem)
	if err != nil {
		return "", "", err
	}
	sess, err := e.uploadPack()
	if err != nil {
		return "", "", err
	}
	defer sess.Close()
	adv, err := sess.AdvertisedReferencesContext(ctx)
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		adv, err = nil, nil
	}
	if err != nil {
		return "", "", e.fail(ctx, "list refs of", err)
	}
	refs, head, err := remoteRefs(adv)
	if err != nil {
		return "", "", e.fail(ctx, "list refs of", err)
	}
	if len(refs) == 0 {
		return "", "", fmt.Errorf("fetch from %s: %w: the remote has no commits (push to it first)", e.display, core.ErrNotFound)
	}
	name, err := resolveRef(refs, head, ref)
	if err != nil {
		return "", "", fmt.Errorf("fetch from %s: %w", e.display, err)
	}
	want := refs[name]
	if _, err := r.st.EncodedObject(plumbing.AnyObject, want); err != nil {
		if err := r.fetchPack(ctx, e, sess, adv, want); err != nil {
			return "", "", err
		}
		if _, err := r.st.EncodedObject(plumbing.AnyObject, want); err != nil {
			return "", "", fmt.Errorf("fetch from %s: %s did not arrive: %w", e.display, name.Short(), err)
		}
	}
	commit, err := r.peel(want)
	if err != nil {
		return "", "", fmt.Errorf("fetch from %s: %s: %w", e.display, name.Short(), err)
	}
	return commit.String(), name.String(), nil
}

// maxHaves bounds the local commits offered to the remote as common
// ground. The local head is the one that matters when the remote's branch
// descends from it, the only case a pull goes on with; each one more is a
// commit to read.
const maxHaves = 16

// fetchPack asks the remote for want and everything it needs that the
// local history lacks, and stores the pack it sends.
func (r *Repo) fetchPack(ctx context.Context, e *endpoint, sess transport.UploadPackSession, adv *packp.AdvRefs, want plumbing.Hash) error {
	req := packp.NewUploadPackRequestFromCapabilities(adv.Capabilities)
	if adv.Capabilities.Supports(capability.NoProgress) {
		if err := req.Capabilities.Set(capability.NoProgress); err != nil {
			return err
		}
	}
	req.Wants = []plumbing.Hash{want}
	haves, err := r.haves(ctx)
	if err != nil {
		return err
	}
	req.Haves = haves
	rd, err := sess.UploadPack(ctx, req)
	if err != nil {
		return e.fail(ctx, "fetch from", err)
	}
	defer rd.Close()
	var pack io.Reader = rd
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		pack = sideband.NewDemuxer(sideband.Sideband64k, rd)
	case req.Capabilities.Supports(capability.Sideband):
		pack = sideband.NewDemuxer(sideband.Sideband, rd)
	}
	if err := packfile.UpdateObjectStorage(r.st, pack); err != nil {
		return e.fail(ctx, "fetch from", err)
	}
	return nil
}

// haves lists the local head and up to maxHaves commits below it.
func (r *Repo) haves(ctx context.Context) ([]plumbing.Hash, error) {
	head, err := r.Head(ctx)
	if err != nil || head == "" {
		return nil, err
	}
	c, err := r.commitObject(plumbing.NewHash(head))
	if err != nil {
		return nil, fmt.Errorf("read head commit: %w", err)
	}
	var out []plumbing.Hash
	err = object.NewCommitPreorderIter(c, nil, nil).ForEach(func(c *object.Commit) error {
		out = append(out, c.Hash)
		if len(out) == maxHaves {
			return storer.ErrStop
		}
		return nil
	})
	return out, err
}

// uploadPack opens a session with the remote's upload-pack.
func (e *endpoint) uploadPack() (transport.UploadPackSession, error) {
	c, ep, err := e.client()
	if err != nil {
		return nil, err
	}
	sess, err := c.NewUploadPackSession(ep, e.auth)
	if err != nil {
		return nil, e.fail(context.Background(), "fetch from", err)
	}
	return sess, nil
}

// resolveRef finds the remote ref named by ref: "" is HEAD's branch, a
// "refs/..." name is exact, a short name is a branch, then a tag.
func resolveRef(refs map[plumbing.ReferenceName]plumbing.Hash, head plumbing.ReferenceName, ref string) (plumbing.ReferenceName, error) {
	var tries []plumbing.ReferenceName
	switch {
	case ref == "" || ref == "HEAD":
		if _, ok := refs[head]; head == "" || !ok {
			return "", fmt.Errorf("%w: the remote's HEAD names no commit: give the branch (--ref or --branch)", core.ErrNotFound)
		}
		return head, nil
	case strings.HasPrefix(ref, "refs/"):
		tries = []plumbing.ReferenceName{plumbing.ReferenceName(ref)}
	default:
		tries = []plumbing.ReferenceName{plumbing.NewBranchReferenceName(ref), plumbing.NewTagReferenceName(ref)}
	}
	for _, n := range tries {
		if _, ok := refs[n]; ok {
			return n, nil
		}
	}
	var branches []string
	for n := range refs {
		if n.IsBranch() {
			branches = append(branches, n.Short())
		}
	}
	sort.Strings(branches)
	return "", fmt.Errorf("%w: the remote has no branch or tag %q (its branches: %s)", core.ErrNotFound, ref, strings.Join(branches, ", "))
}

// peel follows annotated tags to the commit they name.
func (r *Repo) peel(h plumbing.Hash) (plumbing.Hash, error) {
	for range 10 {
		obj, err := r.st.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("read %s: %w", h, err)
		}
		switch obj.Type() {
		case plumbing.CommitObject:
			return h, nil
		case plumbing.TagObject:
			tag, err := object.DecodeTag(r.st, obj)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			h = tag.Target
		default:
			return plumbing.ZeroHash, fmt.Errorf("%w: it names a %s, not a commit", core.ErrInvalid, obj.Type())
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("%w: too many nested tags", core.ErrInvalid)
}

// NewCommits implements core.GitRepo.
func (r *Repo) NewCommits(ctx context.Context, from, to string) ([]core.CommitInfo, error) {
	cs, err := r.newCommits(ctx, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]core.CommitInfo, len(cs))
	for i, c := range cs {
		out[i] = commitInfo(c)
	}
	return out, nil
}

// newCommits is NewCommits with the decoded commits.
func (r *Repo) newCommits(ctx context.Context, from, to string) ([]*object.Commit, error) {
	if from != "" {
		if out, ok, err := r.newCommitsAbove(ctx, from, to); err != nil || ok {
			return out, err
		}
	}
	known := map[plumbing.Hash]bool{}
	if from != "" {
		stack := []plumbing.Hash{plumbing.NewHash(from)}
		known[stack[0]] = true
		for len(stack) > 0 {
			h := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			c, err := r.commitObject(h)
			if err != nil {
				return nil, fmt.Errorf("read commit %s: %w", h, err)
			}
			for _, p := range c.ParentHashes {
				if !known[p] {
					known[p] = true
					stack = append(stack, p)
				}
			}
		}
	}
	return r.commitsAbove(ctx, known, to)
}

// newCommitsAbove is newCommits without walking the history of from: it
// walks back from to, stopping at from. If that walk reaches no root commit,
// none of the commits it met is an ancestor of from (every ancestor of such
// a commit would be met too, a root among them), so they are the answer.
// ok is false when a root was reached and the full walk must decide.
func (r *Repo) newCommitsAbove(ctx context.Context, from, to string) ([]*object.Commit, bool, error) {
	out, err := r.commitsAbove(ctx, map[plumbing.Hash]bool{plumbing.NewHash(from): true}, to)
	if err != nil {
		return nil, false, err
	}
	for _, c := range out {
		if len(c.ParentHashes) == 0 {
			return nil, false, nil
		}
	}
	return out, true, nil
}

// commitsAbove lists the commits reachable from to without passing through
// a known one, parents before children.
func (r *Repo) commitsAbove(ctx context.Context, known map[plumbing.Hash]bool, to string) ([]*object.Commit, error) {
	toHash := plumbing.NewHash(to)
	if known[toHash] {
		return nil, nil
	}
	top, err := r.commitObject(toHash)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", to, core.ErrNotFound)
	}
	// Depth-first, a commit is emitted once all its parents are.
	type frame struct {
		c    *object.Commit
		next int
	}
	seen := map[plumbing.Hash]bool{toHash: true}
	stack := []frame{{c: top}}
	var out []*object.Commit
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f := &stack[len(stack)-1]
		if f.next < len(f.c.ParentHashes) {
			p := f.c.ParentHashes[f.next]
			f.next++
			if known[p] || seen[p] {
				continue
			}
			seen[p] = true
			pc, err := r.commitObject(p)
			if err != nil {
				return nil, fmt.Errorf("read commit %s: %w", p, err)
			}
			stack = append(stack, frame{c: pc})
			continue
		}
		out = append(out, f.c)
		stack = stack[:len(stack)-1]
	}
	return out, nil
}

// Changes implements core.GitRepo.
func (r *Repo) Changes(ctx context.Context, hash string) ([]core.FileChange, error) {
	c, err := r.commitObject(plumbing.NewHash(hash))
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", hash, core.ErrNotFound)
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", hash, err)
	}
	var changed map[string]string
	if c.NumParents() == 0 {
		changed = map[string]string{}
		if err := r.changedFiles(ctx, nil, tree, "", changed); err != nil {
			return nil, fmt.Errorf("list files of %s: %w", hash, err)
		}
	}
	for i, ph := range c.ParentHashes {
		pc, err := r.commitObject(ph)
		if err != nil {
			return nil, fmt.Errorf("read parent %s of %s: %w", ph, hash, err)
		}
		pt, err := pc.Tree()
		if err != nil {
			return nil, fmt.Errorf("read tree of %s: %w", ph, err)
		}
		vsParent := map[string]string{}
		if err := r.changedFiles(ctx, pt, tree, "", vsParent); err != nil {
			return nil, fmt.Errorf("diff %s against %s: %w", hash, ph, err)
		}
		if i == 0 {
			changed = vsParent
			continue
		}
		// A merge changes what differs from every parent, as git's
		// combined diff shows it.
		for p, b := range changed {
			if vsParent[p] != b {
				delete(changed, p)
			}
		}
	}
	out := make([]core.FileChange, 0, len(changed))
	for p, b := range changed {
		out = append(out, core.FileChange{Path: p, Blob: b})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// changedFiles adds to out, by path under prefix, the regular files of
// tree to that tree from (nil: empty) lacks or holds with another blob or
// mode. Subtrees with the same hash are skipped unread, which makes it much
// cheaper than go-git's general tree diff on a long history.
func (r *Repo) changedFiles(ctx context.Context, from, to *object.Tree, prefix string, out map[string]string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	old := map[string]object.TreeEntry{}
	if from != nil {
		for _, e := range from.Entries {
			old[e.Name] = e
		}
	}
	for _, e := range to.Entries {
		o, had := old[e.Name]
		if had && o.Hash == e.Hash && o.Mode == e.Mode {
			continue
		}
		p := prefix + e.Name
		switch {
		case e.Mode == filemode.Dir:
			var sub *object.Tree
			if had && o.Mode == filemode.Dir {
				t, err := r.repo.TreeObject(o.Hash)
				if err != nil {
					return fmt.Errorf("read tree %s: %w", o.Hash, err)
				}
				sub = t
			}
			t, err := r.repo.TreeObject(e.Hash)
			if err != nil {
				return fmt.Errorf("read tree %s: %w", e.Hash, err)
			}
			if err := r.changedFiles(ctx, sub, t, p+"/", out); err != nil {
				return err
			}
		case isRegular(e.Mode):
			out[p] = e.Hash.String()
		}
	}
	return nil
}

func isRegular(m filemode.FileMode) bool {
	return m == filemode.Regular || m == filemode.Executable || m == filemode.Deprecated
}

// SetHead implements core.GitRepo.
func (r *Repo) SetHead(ctx context.Context, commit string) error {
	h := plumbing.NewHash(commit)
	if _, err := r.commitObject(h); err != nil {
		return fmt.Errorf("commit %s: %w", commit, core.ErrNotFound)
	}
	if err := r.st.SetReference(plumbing.NewHashReference(branchRef, h)); err != nil {
		return fmt.Errorf("move %s: %w", branchRef, err)
	}
	return r.packFetched()
}

// packFetched packs what a fetch left loose and merges the fetch's pack with
// the others as every commit does (compact.go).
func (r *Repo) packFetched() error { return r.compact() }

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// netrcLookup finds the login and password for host in $NETRC or ~/.netrc,
// as curl and git do: the first "machine HOST" entry, else "default".
// file is "" when there is no entry.
func netrcLookup(host string) (login, password, file string, err error) {
	file = os.Getenv("NETRC")
	if file == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", "", "", nil
		}
		file = filepath.Join(home, ".netrc")
	}
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return "", "", "", nil
	}
	if err != nil {
		return "", "", "", fmt.Errorf("read %s: %w", file, err)
	}
	login, password, ok := parseNetrc(string(data), host)
	if !ok {
		return "", "", "", nil
	}
	return login, password, file, nil
}

// parseNetrc returns the entry for host in a netrc file's text.
func parseNetrc(text, host string) (login, password string, ok bool) {
	type entry struct{ login, password string }
	var (
		found, def *entry
		cur        *entry
	)
	fields := strings.Fields(text)
	for i := 0; i < len(fields); i++ {
		next := func() string {
			if i+1 < len(fields) {
				i++
				return fields[i]
			}
			return ""
		}
		switch fields[i] {
		case "machine":
			m := next()
			cur = &entry{}
			if m == host && found == nil {
				found = cur
			}
		case "default":
			cur = &entry{}
			if def == nil {
				def = cur
			}
		case "login":
			if v := next(); cur != nil {
				cur.login = v
			}
		case "password":
			if v := next(); cur != nil {
				cur.password = v
			}
		case "account":
			next()
		case "macdef":
			// A macro runs to the next blank line; skip its words up to
			// the next entry keyword (macros are rare in git's netrcs).
			next()
			for i+1 < len(fields) && fields[i+1] != "machine" && fields[i+1] != "default" {
				i++
			}
		}
	}
	if found == nil {
		found = def
	}
	if found == nil || found.password == "" {
		return "", "", false
	}
	return found.login, found.password, true
}
