package dsse

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	ssl "github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/keys"
)

// PayloadTypeInToto is the payload type of an in-toto Statement.
const PayloadTypeInToto = "application/vnd.in-toto+json"

// Envelope is a DSSE envelope as JSON carries it.
type Envelope = ssl.Envelope

// Sign wraps payload in an envelope signed by priv (Ed25519 or ECDSA P-256:
// ECDSA signs the SHA-256 of the message, ASN.1 DER encoded, as other DSSE
// implementations expect).
func Sign(ctx context.Context, priv crypto.Signer, payloadType string, payload []byte) (*Envelope, error) {
	s, err := newSigner(priv)
	if err != nil {
		return nil, err
	}
	es, err := ssl.NewEnvelopeSigner(s)
	if err != nil {
		return nil, err
	}
	return es.SignPayload(ctx, payloadType, payload)
}

// Verify checks env against the trusted public keys. It returns the id of a
// key whose signature verified and the decoded payload. An envelope no
// trusted key signed, or whose payload type is not payloadType, gives an
// error wrapping core.ErrUnverified.
func Verify(ctx context.Context, env *Envelope, payloadType string, trusted []crypto.PublicKey) (string, []byte, error) {
	if env == nil || len(env.Signatures) == 0 {
		return "", nil, fmt.Errorf("%w: the envelope has no signature", core.ErrUnverified)
	}
	if env.PayloadType != payloadType {
		return "", nil, fmt.Errorf("%w: payload type %q, want %q", core.ErrUnverified, env.PayloadType, payloadType)
	}
	if len(trusted) == 0 {
		return "", nil, fmt.Errorf("%w: no trusted key to verify with", core.ErrUnverified)
	}
	var vs []ssl.Verifier
	for _, pub := range trusted {
		v, err := newVerifier(pub)
		if err != nil {
			return "", nil, err
		}
		vs = append(vs, v)
	}
	ev, err := ssl.NewEnvelopeVerifier(vs...)
	if err != nil {
		return "", nil, err
	}
	accepted, payload, err := ev.VerifyAndDecode(ctx, env)
	if err != nil || len(accepted) == 0 {
		return "", nil, fmt.Errorf("%w: no signature verifies with a trusted key (signed by %s)", core.ErrUnverified, signerIDs(env))
	}
	return accepted[0].KeyID, payload, nil
}

// Decode parses an envelope from JSON.
func Decode(data []byte) (*Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: not a DSSE envelope: %v", core.ErrInvalid, err)
	}
	if env.PayloadType == "" || env.Payload == "" {
		return nil, fmt.Errorf("%w: not a DSSE envelope: no payloadType or payload", core.ErrInvalid)
	}
	return &env, nil
}

func signerIDs(env *Envelope) string {
	s := ""
	for i, sig := range env.Signatures {
		if i > 0 {
			s += ", "
		}
		if sig.KeyID == "" {
			s += "a key without id"
		} else {
			s += "key " + sig.KeyID
		}
	}
	return s
}

// signerVerifier adapts a runprov key to go-securesystemslib's interfaces.
type signerVerifier struct {
	priv crypto.Signer // nil for a verifier
	pub  crypto.PublicKey
	id   string
}

func newSigner(priv crypto.Signer) (*signerVerifier, error) {
	sv, err := newVerifier(priv.Public())
	if err != nil {
		return nil, err
	}
	sv.priv = priv
	return sv, nil
}

func newVerifier(pub crypto.PublicKey) (*signerVerifier, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
	case *ecdsa.PublicKey:
		if k.Curve.Params().Name != "P-256" {
			return nil, fmt.Errorf("%w: ECDSA key on %s; runprov signs with P-256", core.ErrInvalid, k.Curve.Params().Name)
		}
	default:
		return nil, fmt.Errorf("%w: key type %T cannot sign envelopes", core.ErrInvalid, pub)
	}
	id, err := keys.ID(pub)
	if err != nil {
		return nil, err
	}
	return &signerVerifier{pub: pub, id: id}, nil
}

func (s *signerVerifier) KeyID() (string, error)   { return s.id, nil }
func (s *signerVerifier) Public() crypto.PublicKey { return s.pub }

func (s *signerVerifier) Sign(_ context.Context, data []byte) ([]byte, error) {
	if s.priv == nil {
		return nil, errors.New("sign: no private key")
	}
	if _, ok := s.pub.(ed25519.PublicKey); ok {
		return s.priv.Sign(rand.Reader, data, crypto.Hash(0))
	}
	sum := sha256.Sum256(data)
	return s.priv.Sign(rand.Reader, sum[:], crypto.SHA256)
}

func (s *signerVerifier) Verify(_ context.Context, data, sig []byte) error {
	switch k := s.pub.(type) {
	case ed25519.PublicKey:
		if ed25519.Verify(k, data, sig) {
			return nil
		}
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(data)
		if ecdsa.VerifyASN1(k, sum[:], sig) {
			return nil
		}
	}
	return errors.New("signature does not verify")
}
