package policy

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/runprov/runprov/core"
)

// releaseKeys decode the release settings of a policy file.
var releaseKeys = map[string]func(p *core.Policy, raw json.RawMessage, keys KeyChecker) error{
	"release_dir": func(p *core.Policy, raw json.RawMessage, _ KeyChecker) (err error) {
		p.ReleaseRules.Dir, err = dirValue("release_dir", raw)
		return err
	},
	"output_checker_keys": func(p *core.Policy, raw json.RawMessage, keys KeyChecker) error {
		ks, err := publicKeys("output_checker_keys", raw, keys)
		p.ReleaseRules.CheckerKeys = ks
		return err
	},
	"release_reviews_required": func(p *core.Policy, raw json.RawMessage, _ KeyChecker) (err error) {
		p.ReleaseRules.ReviewsRequired, err = positiveInt("release_reviews_required", raw)
		return err
	},
	"release_max_bytes": func(p *core.Policy, raw json.RawMessage, _ KeyChecker) error {
		n, err := positiveInt("release_max_bytes", raw)
		p.ReleaseRules.MaxBytes = int64(n)
		return err
	},
	"release_max_rows": func(p *core.Policy, raw json.RawMessage, _ KeyChecker) (err error) {
		p.ReleaseRules.MaxRows, err = positiveInt("release_max_rows", raw)
		return err
	},
	"release_min_count": func(p *core.Policy, raw json.RawMessage, _ KeyChecker) (err error) {
		p.ReleaseRules.MinCount, err = positiveInt("release_min_count", raw)
		return err
	},
	"release_allowed_types": func(p *core.Policy, raw json.RawMessage, _ KeyChecker) error {
		l, err := stringList("release_allowed_types", raw, "file name extensions, like [\"csv\", \"png\"]")
		for i, t := range l {
			l[i] = strings.ToLower(strings.TrimPrefix(t, "."))
		}
		p.ReleaseRules.Types = l
		return err
	},
	"release_forbidden_columns": func(p *core.Policy, raw json.RawMessage, _ KeyChecker) error {
		l, err := patternList("release_forbidden_columns", raw)
		p.ReleaseRules.ForbiddenColumns = l
		return err
	},
	"release_count_columns": func(p *core.Policy, raw json.RawMessage, _ KeyChecker) error {
		l, err := patternList("release_count_columns", raw)
		p.ReleaseRules.CountColumns = l
		return err
	},
}

func positiveInt(key string, raw json.RawMessage) (int, error) {
	var n int
	if err := json.Unmarshal(raw, &n); err != nil || n < 1 {
		return 0, fmt.Errorf("%s: %w: %s is not a whole number of at least 1", key, core.ErrInvalid, raw)
	}
	return n, nil
}

func stringList(key string, raw json.RawMessage, want string) ([]string, error) {
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil || l == nil {
		return nil, fmt.Errorf("%s: %w: want a list of %s", key, core.ErrInvalid, want)
	}
	for _, s := range l {
		if s == "" {
			return nil, fmt.Errorf("%s: %w: an empty entry", key, core.ErrInvalid)
		}
	}
	return l, nil
}

// patternList reads glob patterns, lower-cased: column names match them
// case-insensitively.
func patternList(key string, raw json.RawMessage) ([]string, error) {
	l, err := stringList(key, raw, `glob patterns of column names, like ["*patient_id*"]`)
	for i, s := range l {
		if _, perr := path.Match(s, ""); perr != nil {
			return nil, fmt.Errorf("%s: %w: pattern %q: %v", key, core.ErrInvalid, s, perr)
		}
		l[i] = strings.ToLower(s)
	}
	return l, err
}

// publicKeys reads a list of public key files, each as safe as the policy
// itself: whoever could replace one could vote or approve in its name.
func publicKeys(key string, raw json.RawMessage, keys KeyChecker) ([]core.PolicyKey, error) {
	var paths []string
	if err := json.Unmarshal(raw, &paths); err != nil || paths == nil {
		return nil, fmt.Errorf("%s: %w: want a list of public key file paths", key, core.ErrInvalid)
	}
	var out []core.PolicyKey
	for _, p := range paths {
		if err := absolute(key, p); err != nil {
			return nil, err
		}
		if err := CheckSafe(p); err != nil {
			return nil, fmt.Errorf("%s %s: %w", key, p, err)
		}
		id, err := keys.PublicKeyID(p)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", key, p, err)
		}
		out = append(out, core.PolicyKey{Path: p, ID: id})
	}
	return out, nil
}
