package release

import (
	"context"
	"io"

	"github.com/runprov/runprov/core"
)

// Types of what the spool keeps.
const (
	RequestType   = "https://runprov.dev/release-request/v1"
	LogType       = "https://runprov.dev/release-log/v1"
	StatementType = "https://in-toto.io/Statement/v1"
	VoteType      = "https://runprov.dev/release-vote/v1"
	ReleaseType   = "https://runprov.dev/release/v1"
	// PayloadTypeInToto is the DSSE payload type of votes and releases.
	PayloadTypeInToto = "application/vnd.in-toto+json"
	// PayloadTypeLog is the DSSE payload type of a signed log entry.
	PayloadTypeLog = "application/vnd.runprov.release-log+json"
	// PayloadTypeRequest is the DSSE payload type of a signed request.json.
	PayloadTypeRequest = "application/vnd.runprov.release-request+json"
)

// Vote decisions.
const (
	Approve = "approve"
	Reject  = "reject"
	Return  = "return"
)

// Log actions.
const (
	ActionRequest = "request"
	ActionView    = "view"
	ActionVote    = "vote"
	ActionExport  = "export"
)

// Spool is the release spool directory (drivers/spool).
type Spool interface {
	// Ready makes the spool's missing parts.
	Ready(ctx context.Context) error
	// PutRequest writes request id whole, read-only: files by name and
	// blobs under files/SHA256 (an error when content is not its sha256).
	PutRequest(ctx context.Context, id string, files map[string][]byte, blobs map[string]func() (io.ReadCloser, error)) error
	// RequestIDs lists the requests.
	RequestIDs(ctx context.Context) ([]string, error)
	// Resolve names the request a prefix names (core.ErrNotFound,
	// core.ErrAmbiguous).
	Resolve(ctx context.Context, prefix string) (string, error)
	// ReadRequestFile reads a file of a request.
	ReadRequestFile(ctx context.Context, id, name string) ([]byte, error)
	// RequestPath is the path of a file of a request.
	RequestPath(id, name string) (string, error)
	// PutVote writes a vote of request id and returns its name.
	PutVote(ctx context.Context, id, key string, data []byte) (string, error)
	// Votes returns the votes of request id ("" for all) by name.
	Votes(ctx context.Context, id string) (map[string][]byte, error)
	// Log returns the log's entries in order.
	Log(ctx context.Context) ([]core.SpoolEntry, error)
	// Owner is the uid that owns a request (part "requests"), a vote
	// ("votes") or a log entry ("log").
	Owner(ctx context.Context, part, name string) (int, error)
	// Append adds an entry built from the next number and the hex sha256
	// of the last entry.
	Append(ctx context.Context, build func(seq int, prev string) ([]byte, error)) (int, error)
}

// Signer signs with one private key.
type Signer interface {
	// KeyID is the key's id (hex sha256 of its PKIX DER public key).
	KeyID() string
	// PublicPEM is the public key as PKIX PEM.
	PublicPEM() []byte
	// Sign returns a DSSE envelope (JSON) of payload.
	Sign(ctx context.Context, payloadType string, payload []byte) ([]byte, error)
}

// Verifier checks DSSE envelopes.
type Verifier interface {
	// Verify checks envelope against the public keys (PKIX PEM) and
	// returns the id of a key that verified and the payload; an error
	// wrapping core.ErrUnverified when none does.
	Verify(ctx context.Context, envelope []byte, payloadType string, trusted [][]byte) (string, []byte, error)
	// Open returns the payload and the key ids the signatures name, without
	// verifying; an error wrapping core.ErrInvalid when envelope is not one.
	Open(envelope []byte) ([]byte, []string, error)
	// KeyID is the id of a PKIX PEM public key.
	KeyID(pub []byte) (string, error)
}

// Person is who did something: the OS account, and the key when signed.
type Person struct {
	User  string `json:"user"`
	UID   int    `json:"uid"`
	KeyID string `json:"key_id,omitempty"`
}

// Same reports whether p and q are the same person: the same OS account or
// the same key.
func (p Person) Same(q Person) bool {
	return p.UID == q.UID || (p.KeyID != "" && p.KeyID == q.KeyID)
}

// Finding is what a pre-check found in a file.
type Finding struct {
	File   string `json:"file"`
	Rule   string `json:"rule"`
	Where  string `json:"where,omitempty"`
	Detail string `json:"detail"`
	// Refuse: the file may not join a request; else a checker must judge it.
	Refuse bool `json:"refuse"`
}

// Column is a CSV/TSV column's summary.
type Column struct {
	Name    string   `json:"name"`
	Numeric bool     `json:"numeric"`
	Min     *float64 `json:"min,omitempty"`
	Max     *float64 `json:"max,omitempty"`
	Empty   int      `json:"empty"`
}

// Table summarises a CSV or TSV file.
type Table struct {
	Rows    int      `json:"rows"`
	Columns []Column `json:"columns"`
}

// File is a file of a request: where the run left it and what it is.
type File struct {
	Name        string    `json:"name"`   // as released: the path in its output directory
	Output      string    `json:"output"` // the OUTPUT's container path
	SHA256      string    `json:"sha256"`
	Size        int64     `json:"size"`
	Sensitivity string    `json:"sensitivity"`
	Type        string    `json:"type"`
	Findings    []Finding `json:"findings"`
	Table       *Table    `json:"table,omitempty"`
}

// RunRef is the run a request's files come from, and its record.
type RunRef struct {
	ID     string `json:"id"`
	Repo   string `json:"repo,omitempty"`
	Commit string `json:"commit"`
	Path   string `json:"path,omitempty"`
	Image  string `json:"image"`
	Status string `json:"status"`
	// Record is the bundle's file with the run's in-toto statement: its
	// signed envelope (run.dsse.json) or, unsigned, the statement itself
	// (run.intoto.json); RecordSHA256 is its hex sha256.
	Record       string `json:"record"`
	RecordSHA256 string `json:"record_sha256"`
	Signed       bool   `json:"signed"`
	SignerKeyID  string `json:"signer_key_id,omitempty"`
	SignerKind   string `json:"signer_kind,omitempty"`
}

// Request is a release request as request.json keeps it.
type Request struct {
	Type      string            `json:"_type"`
	ID        string            `json:"id"`
	Created   string            `json:"created"` // RFC 3339
	Requester Person            `json:"requester"`
	Note      string            `json:"note"`
	Run       RunRef            `json:"run"`
	Files     []File            `json:"files"`
	Rules     core.ReleaseRules `json:"rules"`
	Policy    string            `json:"policy"`
}

// File returns the request's file called name, nil when none is.
func (r *Request) File(name string) *File {
	for i := range r.Files {
		if r.Files[i].Name == name {
			return &r.Files[i]
		}
	}
	return nil
}

// Entry is one entry of the spool's log.
type Entry struct {
	Type    string `json:"_type"`
	Seq     int    `json:"seq"`
	Prev    string `json:"prev"` // hex sha256 of the previous entry's bytes; "" for the first
	Time    string `json:"time"`
	Action  string `json:"action"`
	Request string `json:"request"`
	Actor   Person `json:"actor"`
	// Object is what the action wrote (the request's request.json, a vote
	// file, the export's statement), with its hex sha256.
	Object string `json:"object,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Note   string `json:"note,omitempty"`
	// PublicKey is the signer's public key (PKIX PEM) of a request or
	// export, whose keys the policy does not list.
	PublicKey string `json:"public_key,omitempty"`
}

// Subject is an in-toto subject.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// Vote is a checker's signed vote.
type Vote struct {
	Request       string `json:"request"`
	RequestSHA256 string `json:"request_sha256"`
	Decision      string `json:"decision"`
	Note          string `json:"note"`
	Checker       Person `json:"checker"`
	Time          string `json:"time"`
	// LogHead is the hex sha256 of the log's last entry when the vote was
	// signed: the vote vouches for the log up to there.
	LogHead string `json:"log_head"`
}

type voteStatement struct {
	Type          string    `json:"_type"`
	Subject       []Subject `json:"subject"`
	PredicateType string    `json:"predicateType"`
	Predicate     Vote      `json:"predicate"`
}

// CastVote is a vote as read from the spool: the vote, the files it is
// about (name → sha256), and its file's name and sha256.
type CastVote struct {
	Vote
	Files    map[string]string `json:"files"`
	File     string            `json:"file"`
	SHA256   string            `json:"sha256"`
	Verified bool              `json:"verified"`
	Problem  string            `json:"problem,omitempty"`
}
