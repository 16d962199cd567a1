package core

import "time"

// Who holds the key that signed a run record.
const (
	// SignerSite is the site policy's sign_key: runs made as root or by a
	// service, attested by the site.
	SignerSite = "site"
	// SignerPersonal is an analyst's own key (run --sign-key).
	SignerPersonal = "personal"
)

// RunSignature is a run record's signature: a DSSE envelope of the run's
// in-toto statement, as runprov export --format intoto prints it.
type RunSignature struct {
	RunID    string    `json:"-"`
	KeyID    string    `json:"key_id"`   // keys.ID of the signing key
	KeyKind  string    `json:"key_kind"` // SignerSite or SignerPersonal
	SignedAt time.Time `json:"signed_at"`
	Envelope []byte    `json:"-"` // the DSSE envelope, JSON
}
