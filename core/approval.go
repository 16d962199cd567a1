package core

import (
	"fmt"
	"time"
)

// SignedApproval is a signed approval or revocation of an image: a DSSE
// envelope of an in-toto statement, with what was read from it.
type SignedApproval struct {
	Digest   string    `json:"digest"`  // subject, "sha256:<hex>"
	Revoke   bool      `json:"revoke"`  // a revocation, not an approval
	KeyID    string    `json:"key_id"`  // the signer's key id (keys.ID)
	Note     string    `json:"note"`    // from the predicate
	At       time.Time `json:"at"`      // when it was signed (the predicate's time)
	Expires  time.Time `json:"expires"` // zero: never
	SHA256   string    `json:"sha256"`  // hex sha256 of Envelope
	Source   string    `json:"source"`  // "store" or the file it came from
	Envelope []byte    `json:"-"`
	// Verified: the signature verifies with one of the policy's approver keys.
	Verified bool `json:"verified"`
	// Problem says why an envelope was not used ("" when it was read fine).
	Problem string `json:"problem,omitempty"`
}

// RunApproval names the signed approval a run relied on.
type RunApproval struct {
	KeyID  string `json:"key_id"`
	SHA256 string `json:"envelope_sha256"`
}

// Approval refusal reasons (ApprovalError.Reason).
const (
	ApprovalNever     = "never approved"
	ApprovalRevoked   = "revoked"
	ApprovalExpired   = "expired"
	ApprovalUntrusted = "untrusted key"
	ApprovalUnsigned  = "unsigned"
)

// ApprovalError is an image refused because the site policy names approver
// keys and no signed approval by one of them admits it. It matches
// ErrNotApproved.
type ApprovalError struct {
	Digest string // the image (index, else manifest)
	Reason string // Approval*
	Policy string // the site policy file
	At     time.Time
	Note   string // of the revocation
	KeyID  string // the untrusted signer
}

func (e *ApprovalError) Error() string {
	why := "no approval signed by a key of approver_keys"
	switch e.Reason {
	case ApprovalRevoked:
		why = fmt.Sprintf("its approval was revoked on %s: %q", e.At.UTC().Format(time.DateOnly), e.Note)
	case ApprovalExpired:
		why = fmt.Sprintf("its approval expired on %s", e.At.UTC().Format(time.DateOnly))
	case ApprovalUntrusted:
		why = fmt.Sprintf("it is approved only by key %s, which is not one of approver_keys", e.KeyID)
	case ApprovalUnsigned:
		why = "its approval is unsigned, and the site policy counts only approvals signed by a key of approver_keys"
	}
	return fmt.Sprintf("%s: %s (%s): %s (site policy %s)", ErrNotApproved, e.Digest, e.Reason, why, e.Policy)
}

// Is lets errors.Is(err, ErrNotApproved) match.
func (e *ApprovalError) Is(target error) bool { return target == ErrNotApproved }

// ChooseApproval picks the signed approval that admits an image at now from
// as (verified or not, for the image's digests), or says why none does:
// an approval counts when it verified, has not expired and no verified
// revocation is later than it. unsigned says whether the store holds an
// unsigned approval, for the refusal's reason.
func ChooseApproval(as []SignedApproval, unsigned bool, now time.Time) (*SignedApproval, *ApprovalError) {
	var lastRevoke *SignedApproval
	for i := range as {
		a := &as[i]
		if a.Verified && a.Revoke && (lastRevoke == nil || a.At.After(lastRevoke.At)) {
			lastRevoke = a
		}
	}
	var best, expired *SignedApproval
	untrusted := ""
	for i := range as {
		a := &as[i]
		switch {
		case a.Revoke || a.Problem != "":
		case !a.Verified:
			untrusted = a.KeyID
		case lastRevoke != nil && !a.At.After(lastRevoke.At):
		case !a.Expires.IsZero() && !now.Before(a.Expires):
			if expired == nil || a.Expires.After(expired.Expires) {
				expired = a
			}
		case best == nil || a.At.After(best.At):
			best = a
		}
	}
	switch {
	case best != nil:
		return best, nil
	case expired != nil:
		return nil, &ApprovalError{Reason: ApprovalExpired, At: expired.Expires}
	case lastRevoke != nil:
		return nil, &ApprovalError{Reason: ApprovalRevoked, At: lastRevoke.At, Note: lastRevoke.Note}
	case untrusted != "":
		return nil, &ApprovalError{Reason: ApprovalUntrusted, KeyID: untrusted}
	case unsigned:
		return nil, &ApprovalError{Reason: ApprovalUnsigned}
	}
	return nil, &ApprovalError{Reason: ApprovalNever}
}
