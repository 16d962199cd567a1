package keys

import (
	"crypto"
	"errors"
	"fmt"
	"os"

	"github.com/runprov/runprov/core"
)

// KeyPair is a key pair written by WriteKeyPair.
type KeyPair struct {
	PrivatePath string
	PublicPath  string
	ID          string
}

// WriteKeyPair generates a key of type typ and writes PREFIX.key (PKCS#8
// PEM, mode 0600, encrypted when passphrase is not empty) and PREFIX.pub
// (PKIX PEM, 0644). Existing files are never overwritten (core.ErrExists);
// on failure nothing is left behind.
func WriteKeyPair(prefix, typ string, passphrase []byte) (*KeyPair, error) {
	priv, err := Generate(typ)
	if err != nil {
		return nil, err
	}
	privPEM, err := MarshalPrivate(priv, passphrase)
	if err != nil {
		return nil, err
	}
	pubPEM, err := MarshalPublic(priv.Public())
	if err != nil {
		return nil, err
	}
	id, err := ID(priv.Public())
	if err != nil {
		return nil, err
	}
	kp := &KeyPair{PrivatePath: prefix + ".key", PublicPath: prefix + ".pub", ID: id}
	// Check both first so that a refusal leaves the other file alone.
	for _, p := range []string{kp.PrivatePath, kp.PublicPath} {
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("write %s: %w", p, core.ErrExists)
		}
	}
	if err := writeNew(kp.PrivatePath, privPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeNew(kp.PublicPath, pubPEM, 0o644); err != nil {
		os.Remove(kp.PrivatePath)
		return nil, err
	}
	return kp, nil
}

// writeNew creates path with mode (O_EXCL: never through an existing file or
// symlink) and writes data to it.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// The umask may have narrowed mode; a private key must be 0600 exactly.
	err = f.Chmod(mode)
	if _, werr := f.Write(data); err == nil {
		err = werr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// PublicFromFile reads the public key of a private or public key file;
// passphrase decrypts an encrypted private key.
func PublicFromFile(path string, passphrase []byte) (crypto.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pub, err := Public(data, passphrase)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return pub, nil
}

// ReadPublicFile reads a public key file; a private key file is refused, so
// that a policy naming the wrong file of a pair is caught.
func ReadPublicFile(path string) (crypto.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pub, err := ParsePublic(data)
	if err != nil {
		return nil, fmt.Errorf("public key file %s: %w", path, err)
	}
	return pub, nil
}

// CheckPrivateFile checks that path holds a private key, without decrypting
// an encrypted one. It returns (false, nil) when path exists but this user
// may not read it (a signing key kept from the analyst).
func CheckPrivateFile(path string) (readable bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrPermission) {
		if _, serr := os.Stat(path); serr != nil {
			return false, serr
		}
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !IsPrivate(data) {
		return false, fmt.Errorf("private key file %s: %w: not a PEM private key", path, core.ErrInvalid)
	}
	if _, err := ParsePrivate(data, nil); err != nil && !errors.Is(err, ErrPassphrase) {
		return false, fmt.Errorf("private key file %s: %w", path, err)
	}
	return true, nil
}

// Checker checks key files for the site policy (drivers/policy.KeyChecker).
type Checker struct{}

// PublicKeyID returns the id of the public key file at path.
func (Checker) PublicKeyID(path string) (string, error) {
	pub, err := ReadPublicFile(path)
	if err != nil {
		return "", err
	}
	return ID(pub)
}

// CheckPrivateKey accepts a private key file, encrypted or not, or one this
// user may not read (it may be kept for a more privileged signer).
func (Checker) CheckPrivateKey(path string) error {
	_, err := CheckPrivateFile(path)
	return err
}
