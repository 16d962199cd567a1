package dsse

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/keys"
)

// The in-toto statement of an image approval or revocation.
const (
	StatementType     = "https://in-toto.io/Statement/v1"
	PredicateApproval = "https://runprov.dev/approval/v1"
)

type approvalStatement struct {
	Type          string            `json:"_type"`
	Subject       []approvalSubject `json:"approvalSubject"`
	PredicateType string            `json:"predicateType"`
	Predicate     approvalPredicate `json:"approvalPredicate"`
}

type approvalSubject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

type approvalPredicate struct {
	Decision string `json:"decision"` // "approved" or "revoked"
	KeyID    string `json:"approver_key_id"`
	Note     string `json:"note"`
	Time     string `json:"time"`              // RFC 3339
	Expires  string `json:"expires,omitempty"` // RFC 3339; absent: never
}

// SignApproval signs an approval (or, with a.Revoke, a revocation) of
// a.Digest named name, at a.At, expiring at a.Expires unless zero. It
// fills a.KeyID, a.Envelope and a.SHA256.
func SignApproval(ctx context.Context, priv crypto.Signer, name string, a *core.SignedApproval) error {
	id, err := keys.ID(priv.Public())
	if err != nil {
		return err
	}
	hexd, ok := strings.CutPrefix(a.Digest, "sha256:")
	if !ok {
		return fmt.Errorf("%w: digest %q is not sha256:<hex>", core.ErrInvalid, a.Digest)
	}
	p := approvalPredicate{Decision: "approved", KeyID: id, Note: a.Note, Time: a.At.UTC().Format(time.RFC3339)}
	if a.Revoke {
		p.Decision = "revoked"
	}
	if !a.Expires.IsZero() {
		p.Expires = a.Expires.UTC().Format(time.RFC3339)
	}
	st := approvalStatement{StatementType, []approvalSubject{{name, map[string]string{"sha256": hexd}}}, PredicateApproval, p}
	payload, err := json.Marshal(st)
	if err != nil {
		return err
	}
	env, err := Sign(ctx, priv, PayloadTypeInToto, payload)
	if err != nil {
		return err
	}
	data, err := json.Marshal(env)
	if err != nil {
		return err
	}
	a.KeyID, a.Envelope = id, data
	a.SHA256 = envelopeSum(data)
	return nil
}

func envelopeSum(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// ReadApproval reads a signed approval or revocation from envelope data and
// verifies it against trusted (Verified says whether it did). Without a
// verified signature the statement is still read, and KeyID is the key id
// the envelope's signature names, so that a refusal can say whose it is.
// Data that is not an approval statement is an error wrapping core.ErrInvalid.
func ReadApproval(ctx context.Context, data []byte, trusted []crypto.PublicKey) (*core.SignedApproval, error) {
	env, err := Decode(data)
	if err != nil {
		return nil, err
	}
	a := &core.SignedApproval{Envelope: data, SHA256: envelopeSum(data)}
	id, payload, verr := Verify(ctx, env, PayloadTypeInToto, trusted)
	if verr == nil {
		a.Verified, a.KeyID = true, id
	} else {
		if !errors.Is(verr, core.ErrUnverified) {
			return nil, verr
		}
		if payload, err = env.DecodeB64Payload(); err != nil {
			return nil, fmt.Errorf("%w: approval payload: %v", core.ErrInvalid, err)
		}
		if len(env.Signatures) > 0 {
			a.KeyID = env.Signatures[0].KeyID
		}
	}
	var st approvalStatement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("%w: approval approvalStatement: %v", core.ErrInvalid, err)
	}
	if st.Type != StatementType || st.PredicateType != PredicateApproval || len(st.Subject) != 1 || st.Subject[0].Digest["sha256"] == "" {
		return nil, fmt.Errorf("%w: not a runprov approval approvalStatement (predicateType %q)", core.ErrInvalid, st.PredicateType)
	}
	p := st.Predicate
	a.Digest = "sha256:" + st.Subject[0].Digest["sha256"]
	a.Note = p.Note
	a.Revoke = p.Decision == "revoked"
	if !a.Revoke && p.Decision != "approved" {
		return nil, fmt.Errorf("%w: approval decision %q", core.ErrInvalid, p.Decision)
	}
	if a.At, err = time.Parse(time.RFC3339, p.Time); err != nil {
		return nil, fmt.Errorf("%w: approval time: %v", core.ErrInvalid, err)
	}
	if p.Expires != "" {
		if a.Expires, err = time.Parse(time.RFC3339, p.Expires); err != nil {
			return nil, fmt.Errorf("%w: approval expiry: %v", core.ErrInvalid, err)
		}
	}
	return a, nil
}
