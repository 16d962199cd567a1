package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/runprov/runprov/core"
)

// fields are a policy file's keys, each decoded by its entry in known.
type fields map[string]json.RawMessage

// known are the keys of a policy file, exactly as spelled there.
var known = merge(releaseKeys, map[string]func(p *core.Policy, raw json.RawMessage, keys KeyChecker) error{
	"require_approval": func(p *core.Policy, raw json.RawMessage, _ KeyChecker) error {
		b, err := boolValue("require_approval", raw)
		p.RequireApproval = &b
		return err
	},
	"require_signed_records": func(p *core.Policy, raw json.RawMessage, _ KeyChecker) (err error) {
		p.RequireSignedRecords, err = boolValue("require_signed_records", raw)
		return err
	},
	"allow_weaker_sandbox": func(p *core.Policy, raw json.RawMessage, _ KeyChecker) (err error) {
		p.AllowWeakerSandbox, err = boolValue("allow_weaker_sandbox", raw)
		return err
	},
	"allow_cdi_hooks": func(p *core.Policy, raw json.RawMessage, _ KeyChecker) (err error) {
		p.AllowCDIHooks, err = boolValue("allow_cdi_hooks", raw)
		return err
	},
	"approver_keys": approverKeys,
	"approvals_dir": func(p *core.Policy, raw json.RawMessage, _ KeyChecker) (err error) {
		p.ApprovalsDir, err = dirValue("approvals_dir", raw)
		return err
	},
	"sign_key": func(p *core.Policy, raw json.RawMessage, keys KeyChecker) error {
		path, err := pathValue("sign_key", raw)
		if err != nil {
			return err
		}
		if err := keys.CheckPrivateKey(path); err != nil {
			return fmt.Errorf("sign_key: %w", err)
		}
		p.SignKey = path
		return nil
	},
})

func merge[M ~map[string]V, V any](ms ...M) M {
	out := M{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// approverKeys reads the public keys that may approve. Each must be as safe
// as the policy itself: whoever could replace one could approve images.
func approverKeys(p *core.Policy, raw json.RawMessage, keys KeyChecker) error {
	var paths []string
	if err := json.Unmarshal(raw, &paths); err != nil || paths == nil {
		return fmt.Errorf("approver_keys: %w: want a list of public key file paths", core.ErrInvalid)
	}
	for _, path := range paths {
		if err := absolute("approver_keys", path); err != nil {
			return err
		}
		if err := CheckSafe(path); err != nil {
			return fmt.Errorf("approver_keys %s: %w", path, err)
		}
		id, err := keys.PublicKeyID(path)
		if err != nil {
			return fmt.Errorf("approver_keys %s: %w", path, err)
		}
		p.ApproverKeys = append(p.ApproverKeys, core.PolicyKey{Path: path, ID: id})
	}
	return nil
}

// decode reads one JSON object, refusing unknown and repeated keys (with
// encoding/json alone, a repeated key silently keeps the last value and
// keys match case-insensitively).
func decode(r io.Reader) (fields, error) {
	dec := json.NewDecoder(r)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: want a JSON object", core.ErrInvalid)
	}
	f := fields{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", core.ErrInvalid, err)
		}
		key := tok.(string) // inside an object, a token before a value is its key
		if _, ok := known[key]; !ok {
			return nil, fmt.Errorf("%w: unknown key %q (known: %s)", core.ErrInvalid, key, knownKeys())
		}
		if _, dup := f[key]; dup {
			return nil, fmt.Errorf("%w: key %q is given twice", core.ErrInvalid, key)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", core.ErrInvalid, key, err)
		}
		f[key] = raw
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%w: %v", core.ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the JSON object", core.ErrInvalid)
	}
	return f, nil
}

// apply sets p from f, in a fixed order so that errors are reproducible.
func (f fields) apply(p *core.Policy, keys KeyChecker) error {
	names := make([]string, 0, len(f))
	for k := range f {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := known[k](p, f[k], keys); err != nil {
			return err
		}
	}
	return nil
}

func boolValue(key string, raw json.RawMessage) (bool, error) {
	switch string(raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%s: %w: %s is not true or false", key, core.ErrInvalid, raw)
}

func pathValue(key string, raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || s == "" {
		return "", fmt.Errorf("%s: %w: want a file path", key, core.ErrInvalid)
	}
	return s, absolute(key, s)
}

// dirValue is pathValue for a directory that must exist.
func dirValue(key string, raw json.RawMessage) (string, error) {
	dir, err := pathValue(key, raw)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(dir)
	if err == nil && !fi.IsDir() {
		err = fmt.Errorf("%w: not a directory", core.ErrInvalid)
	}
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", key, dir, err)
	}
	return dir, nil
}

func knownKeys() string {
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
