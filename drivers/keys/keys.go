package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/youmark/pkcs8"

	"github.com/runprov/runprov/core"
)

// Key types Generate accepts.
const (
	Ed25519   = "ed25519"
	ECDSAP256 = "ecdsa-p256"
)

// PEM block types.
const (
	pemPrivate          = "PRIVATE KEY"
	pemEncryptedPrivate = "ENCRYPTED PRIVATE KEY"
	pemECPrivate        = "EC PRIVATE KEY"
	pemPublic           = "PUBLIC KEY"
)

// ErrPassphrase: an encrypted private key was given without a passphrase, or
// with the wrong one.
var ErrPassphrase = errors.New("wrong or missing passphrase")

// encryptOpts: AES-256-CBC with PBKDF2-HMAC-SHA256, which openssl (and every
// PKCS#8 reader) understands; the iteration count follows OWASP's advice.
var encryptOpts = &pkcs8.Opts{
	Cipher:  pkcs8.AES256CBC,
	KDFOpts: pkcs8.PBKDF2Opts{SaltSize: 16, IterationCount: 600000, HMACHash: crypto.SHA256},
}

// Generate makes a new private key of type typ (Ed25519 or ECDSAP256).
func Generate(typ string) (crypto.Signer, error) {
	switch typ {
	case Ed25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("key type %q: %w (want %s or %s)", typ, core.ErrInvalid, Ed25519, ECDSAP256)
}

// MarshalPrivate encodes priv as PKCS#8 PEM, encrypted with passphrase unless
// it is empty.
func MarshalPrivate(priv crypto.Signer, passphrase []byte) ([]byte, error) {
	if len(passphrase) == 0 {
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, fmt.Errorf("encode private key: %w", err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: pemPrivate, Bytes: der}), nil
	}
	der, err := pkcs8.MarshalPrivateKey(priv, passphrase, encryptOpts)
	if err != nil {
		return nil, fmt.Errorf("encrypt private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemEncryptedPrivate, Bytes: der}), nil
}

// MarshalPublic encodes pub as PKIX PEM.
func MarshalPublic(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: der}), nil
}

// ID is the hex sha256 of pub's PKIX DER encoding.
func ID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// ParsePrivate decodes a PEM private key: PKCS#8 (encrypted or not) or SEC1
// EC. An encrypted key needs passphrase (else ErrPassphrase). Key types other
// than Ed25519 and ECDSA P-256 are refused with core.ErrUnsupported.
func ParsePrivate(data, passphrase []byte) (crypto.Signer, error) {
	block, err := onePEM(data, pemPrivate, pemEncryptedPrivate, pemECPrivate)
	if err != nil {
		return nil, err
	}
	var key any
	switch block.Type {
	case pemPrivate:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case pemECPrivate:
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case pemEncryptedPrivate:
		if len(passphrase) == 0 {
			return nil, fmt.Errorf("encrypted private key: %w", ErrPassphrase)
		}
		key, _, err = pkcs8.ParsePrivateKey(block.Bytes, passphrase)
		if err != nil {
			return nil, fmt.Errorf("decrypt private key: %w (%v)", ErrPassphrase, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w: %v", core.ErrInvalid, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T: %w", key, core.ErrUnsupported)
	}
	if err := checkType(signer.Public()); err != nil {
		return nil, err
	}
	return signer, nil
}

// ParsePublic decodes a PKIX PEM public key of a supported type.
func ParsePublic(data []byte) (crypto.PublicKey, error) {
	block, err := onePEM(data, pemPublic)
	if err != nil {
		return nil, err
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w: %v", core.ErrInvalid, err)
	}
	if err := checkType(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// IsPrivate reports whether data is a PEM private key (encrypted or not),
// without decoding it: enough to tell the two kinds of key file apart.
func IsPrivate(data []byte) bool {
	block, _ := pem.Decode(data)
	return block != nil && (block.Type == pemPrivate || block.Type == pemEncryptedPrivate || block.Type == pemECPrivate)
}

// Public returns the public key in data, a private (decrypted with passphrase
// when encrypted) or a public key PEM.
func Public(data, passphrase []byte) (crypto.PublicKey, error) {
	if IsPrivate(data) {
		priv, err := ParsePrivate(data, passphrase)
		if err != nil {
			return nil, err
		}
		return priv.Public(), nil
	}
	return ParsePublic(data)
}

// onePEM returns the first PEM block of data, which must be of one of types.
func onePEM(data []byte, types ...string) (*pem.Block, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: not a PEM key", core.ErrInvalid)
	}
	for _, t := range types {
		if block.Type == t {
			return block, nil
		}
	}
	return nil, fmt.Errorf("%w: PEM block %q, want %q", core.ErrInvalid, block.Type, types)
}

// checkType refuses key types runprov does not sign with.
func checkType(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return nil
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return nil
		}
		return fmt.Errorf("ECDSA key on curve %s: %w (want P-256)", k.Curve.Params().Name, core.ErrUnsupported)
	}
	return fmt.Errorf("key of type %T: %w (want Ed25519 or ECDSA P-256)", pub, core.ErrUnsupported)
}
