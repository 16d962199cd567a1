package release

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/runprov/runprov/core"
)

// Release is the airlock over one spool, under the site policy's rules.
type Release struct {
	Spool    Spool
	Verifier Verifier
	Rules    core.ReleaseRules
	Policy   string // the policy file, as requests and exports name it
	// Checkers are the output checkers' public keys (PKIX PEM) by key id.
	Checkers map[string][]byte
	// SiteKey is the public key (PKIX PEM) of the policy's sign_key, which
	// signs run records for the site; nil when there is none.
	SiteKey []byte
	// RequireSigned: the policy's require_signed_records; a run whose
	// record is unsigned cannot release files.
	RequireSigned bool
	Now           func() time.Time
}

func (r *Release) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

// refusef is a refusal: what the policy does not allow, and why.
func refusef(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{core.ErrReleaseRefused}, args...)...)
}

func newHash() hash.Hash { return sha256.New() }

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

func sum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// stamp is an RFC 3339 time with fixed nanoseconds, so that times sort as
// strings (a checker's latest vote is the one that counts).
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z07:00") }

// Bundle is a request as read from the spool, with what its log says.
type Bundle struct {
	Request Request
	// Data is request.json as kept, SHA256 its hex sha256.
	Data   []byte
	SHA256 string
	// Logged: the log has the request's entry, naming this sha256.
	Logged bool
	// Signed: the requester signed it, and the signature verifies with
	// the requester's key (a key only the requester vouches for).
	Signed bool
}

// load reads request id and checks it against the log: request.json must
// be what the log's request entry names, and its signature (when the
// requester signed it) must verify.
func (r *Release) load(ctx context.Context, id string, entries []LogLine) (*Bundle, error) {
	data, err := r.Spool.ReadRequestFile(ctx, id, "request.json")
	if err != nil {
		return nil, fmt.Errorf("release request %s: %w", id, err)
	}
	b := &Bundle{Data: data, SHA256: sum(data)}
	if err := json.Unmarshal(data, &b.Request); err != nil || b.Request.Type != RequestType || b.Request.ID != id {
		return nil, fmt.Errorf("release request %s: %w: request.json is not a release request of that id", id, core.ErrInvalid)
	}
	if p := r.ownedBy(ctx, "requests", id, b.Request.Requester.UID); p != "" {
		return nil, fmt.Errorf("release request %s: %w: %s", id, core.ErrUnverified, p)
	}
	for _, e := range entries {
		if e.Action == ActionRequest && e.Request == id {
			if e.SHA256 != b.SHA256 {
				return nil, fmt.Errorf("release request %s: %w: request.json (sha256 %s) is not what was requested (the log says %s): it was changed", id, core.ErrUnverified, b.SHA256, e.SHA256)
			}
			b.Logged = true
		}
	}
	if !b.Logged {
		return nil, fmt.Errorf("release request %s: %w: the log has no entry for it", id, core.ErrUnverified)
	}
	if b.Request.Requester.KeyID == "" {
		return b, nil
	}
	env, err1 := r.Spool.ReadRequestFile(ctx, id, "request.dsse.json")
	pub, err2 := r.Spool.ReadRequestFile(ctx, id, "requester.pub")
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("release request %s: %w: its signature: %v", id, core.ErrUnverified, err)
	}
	kid, payload, err := r.Verifier.Verify(ctx, env, PayloadTypeRequest, [][]byte{pub})
	if err != nil || kid != b.Request.Requester.KeyID || string(payload) != string(data) {
		return nil, fmt.Errorf("release request %s: %w: the requester's signature does not verify over request.json", id, core.ErrUnverified)
	}
	b.Signed = true
	return b, nil
}

// Open reads request prefix as it is, checked against the log.
func (r *Release) Open(ctx context.Context, prefix string) (*Bundle, error) {
	id, err := r.Spool.Resolve(ctx, prefix)
	if err != nil {
		return nil, err
	}
	entries, _, err := r.readLog(ctx)
	if err != nil {
		return nil, err
	}
	return r.load(ctx, id, entries)
}

// List returns every request, newest last; one that cannot be read is
// left out and named in problems.
func (r *Release) List(ctx context.Context) ([]Request, []string, error) {
	ids, err := r.Spool.RequestIDs(ctx)
	if err != nil {
		return nil, nil, err
	}
	entries, _, err := r.readLog(ctx)
	if err != nil {
		return nil, nil, err
	}
	var out []Request
	var problems []string
	for _, id := range ids {
		b, err := r.load(ctx, id, entries)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		out = append(out, b.Request)
	}
	sortRequests(out)
	return out, problems, nil
}

func sortRequests(rs []Request) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].Created < rs[j-1].Created; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// files are the request's files that paths name (all when none); a path
// that names none is core.ErrNotFound.
func (b *Bundle) files(paths []string) ([]File, error) {
	if len(paths) == 0 {
		return b.Request.Files, nil
	}
	var out []File
	for _, p := range paths {
		f := b.Request.File(strings.TrimPrefix(p, "./"))
		if f == nil {
			return nil, fmt.Errorf("%s: %w in release request %s (it has: %s)", p, core.ErrNotFound, b.Request.ID, strings.Join(names(b.Request.Files), ", "))
		}
		out = append(out, *f)
	}
	return out, nil
}

func names(fs []File) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	return out
}

// ownedBy says how the OS account that made a spool file differs from the
// uid the file claims; "" when they agree. Root may write for anyone.
func (r *Release) ownedBy(ctx context.Context, part, name string, uid int) string {
	owner, err := r.Spool.Owner(ctx, part, name)
	switch {
	case err != nil:
		return "its owner cannot be read: " + err.Error()
	case owner != uid && owner != 0:
		return fmt.Sprintf("it says it is by uid %d, but uid %d wrote it", uid, owner)
	}
	return ""
}
