package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/runprov/runprov/core"
)

// DefaultPath is the site policy; absent, no policy applies.
const DefaultPath = "/etc/runprov/policy.json"

// Env names another policy file (tests, sites that keep it elsewhere).
const Env = "RUNPROV_POLICY"

// KeyChecker checks the key files a policy names (drivers/keys, through the
// wiring).
type KeyChecker interface {
	// PublicKeyID returns the id of the public key file at path, or an
	// error when it is not a supported public key.
	PublicKeyID(path string) (string, error)
	// CheckPrivateKey returns an error when path is not a private key file.
	CheckPrivateKey(path string) error
}

// Load returns the policy in force: the file envPath names when it is not
// "", else defaultPath when it exists, else no policy (a zero core.Policy).
// envPath may not replace an existing defaultPath: the analyst sets the
// environment, and must not be able to choose a weaker policy than the
// site's. Errors are *core.PolicyError (they match core.ErrPolicy).
func Load(defaultPath, envPath string, keys KeyChecker) (*core.Policy, error) {
	if envPath == "" {
		if _, err := os.Lstat(defaultPath); errors.Is(err, os.ErrNotExist) {
			return &core.Policy{}, nil
		}
		return Read(defaultPath, keys)
	}
	if _, err := os.Lstat(defaultPath); err == nil && !sameFile(defaultPath, envPath) {
		return nil, &core.PolicyError{Path: envPath, Err: fmt.Errorf("%s names it, but the site policy %s exists and cannot be replaced: unset %s", Env, defaultPath, Env)}
	}
	return Read(envPath, keys)
}

// Read reads and checks the policy file at path.
func Read(path string, keys KeyChecker) (*core.Policy, error) {
	p, err := read(path, keys)
	if err != nil {
		return nil, &core.PolicyError{Path: path, Err: err}
	}
	return p, nil
}

func read(path string, keys KeyChecker) (*core.Policy, error) {
	f, real, err := openSafe(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fields, err := decode(f)
	if err != nil {
		return nil, err
	}
	p := &core.Policy{Path: real, Given: map[string]bool{}}
	for k := range fields {
		p.Given[k] = true
	}
	if err := fields.apply(p, keys); err != nil {
		return nil, err
	}
	return p, nil
}

func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// absolute refuses a relative path: relative to what the analyst's working
// directory happens to be, it could name anything.
func absolute(key, p string) error {
	if !filepath.IsAbs(p) {
		return fmt.Errorf("%s %q: %w: want an absolute path", key, p, core.ErrInvalid)
	}
	return nil
}
