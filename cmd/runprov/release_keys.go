package main

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/dsse"
	"github.com/runprov/runprov/drivers/keys"
	"github.com/runprov/runprov/plugins/release"
)

// releaseSigner signs release requests, votes, exports and log entries
// with a private key file.
type releaseSigner struct {
	key crypto.Signer
	id  string
	pub []byte
}

var _ release.Signer = (*releaseSigner)(nil)

func loadReleaseSigner(path string) (*releaseSigner, error) {
	s, err := loadSigner(path, core.SignerPersonal)
	if err != nil {
		return nil, signKeyError(err)
	}
	pub, err := keys.MarshalPublic(s.key.Public())
	if err != nil {
		return nil, err
	}
	return &releaseSigner{key: s.key, id: s.id, pub: pub}, nil
}

func (s *releaseSigner) KeyID() string     { return s.id }
func (s *releaseSigner) PublicPEM() []byte { return s.pub }

func (s *releaseSigner) Sign(ctx context.Context, payloadType string, payload []byte) ([]byte, error) {
	env, err := dsse.Sign(ctx, s.key, payloadType, payload)
	if err != nil {
		return nil, err
	}
	return json.Marshal(env)
}

// releaseVerifier checks DSSE envelopes for the release airlock.
type releaseVerifier struct{}

var _ release.Verifier = releaseVerifier{}

func (releaseVerifier) Verify(ctx context.Context, envelope []byte, payloadType string, trusted [][]byte) (string, []byte, error) {
	env, err := dsse.Decode(envelope)
	if err != nil {
		return "", nil, err
	}
	var pubs []crypto.PublicKey
	for _, t := range trusted {
		pub, err := keys.ParsePublic(t)
		if err != nil {
			return "", nil, fmt.Errorf("%w: a trusted key does not parse: %v", core.ErrUnverified, err)
		}
		pubs = append(pubs, pub)
	}
	return dsse.Verify(ctx, env, payloadType, pubs)
}

func (releaseVerifier) Open(envelope []byte) ([]byte, []string, error) {
	env, err := dsse.Decode(envelope)
	if err != nil {
		return nil, nil, err
	}
	payload, err := env.DecodeB64Payload()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: envelope payload: %v", core.ErrInvalid, err)
	}
	var ids []string
	for _, s := range env.Signatures {
		ids = append(ids, s.KeyID)
	}
	return payload, ids, nil
}

func (releaseVerifier) KeyID(pub []byte) (string, error) {
	k, err := keys.ParsePublic(pub)
	if err != nil {
		return "", err
	}
	return keys.ID(k)
}

// checkerKeys reads the policy's output checkers' public keys by id.
func checkerKeys(p *core.Policy) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, k := range p.ReleaseRules.CheckerKeys {
		data, err := os.ReadFile(k.Path)
		if err != nil {
			return nil, &core.PolicyError{Path: p.Path, Err: fmt.Errorf("output checker key: %w", err)}
		}
		out[k.ID] = data
	}
	return out, nil
}

// actor is the OS account running runprov.
func actor() release.Person {
	p := release.Person{UID: os.Getuid()}
	if u, err := user.Current(); err == nil {
		p.User = u.Username
	} else {
		p.User = fmt.Sprint(p.UID)
	}
	return p
}

// errNoSpool: the policy names no release spool.
func errNoSpool(p *core.Policy) error {
	where := "there is no site policy"
	if p.Active() {
		where = "the site policy " + p.Path + " has no release_dir"
	}
	return advise(fmt.Errorf("%w: no release spool: %s", core.ErrReleaseRefused, where), adviceNoReleaseSpool, "")
}

var errNoDecision = errors.New("give one of --approve, --reject or --return")

// siteRecordKey is the public key (PKIX PEM) of the policy's sign_key, from
// the private key when this user can read it, else from the .pub beside it;
// nil when there is none.
func siteRecordKey(p *core.Policy) []byte {
	if !p.Active() || p.SignKey == "" {
		return nil
	}
	pub, err := keys.PublicFromFile(p.SignKey, []byte(os.Getenv(keyPassphraseEnv)))
	if err != nil {
		if pub, err = keys.ReadPublicFile(strings.TrimSuffix(p.SignKey, ".key") + ".pub"); err != nil {
			return nil
		}
	}
	pem, err := keys.MarshalPublic(pub)
	if err != nil {
		return nil
	}
	return pem
}
