package core

import (
	"errors"
	"fmt"
)

// ErrPolicy: the site policy forbids what was asked, or the site policy
// itself cannot be trusted or read (then nothing may proceed: a policy that
// cannot be read must not fall back to no policy).
var ErrPolicy = errors.New("site policy")

// Policy is the site policy: settings an administrator fixes for every store
// on a host, which outrank the store's own settings. The zero Policy (Path
// "") is no policy.
type Policy struct {
	// Path is the policy file; "" when no policy applies.
	Path string
	// RequireApproval, when set, replaces the store's require-approval.
	RequireApproval *bool
	// ApproverKeys are the public keys whose signed approvals count.
	ApproverKeys []PolicyKey
	// ApprovalsDir is where signed approvals and revocations are kept.
	ApprovalsDir string
	// SignKey is the private key file that signs run records.
	SignKey string
	// RequireSignedRecords: every run record must be signed.
	RequireSignedRecords bool
	// AllowWeakerSandbox permits run --allow-weaker-sandbox; false (the
	// default under a policy) forbids it.
	AllowWeakerSandbox bool
	// AllowCDIHooks permits the hooks of CDI specs, which run as root on
	// the host; false refuses a device whose spec has one.
	AllowCDIHooks bool
	// ReleaseRules are the release settings the file gives (zero where it
	// gives none); Release() fills in the defaults.
	ReleaseRules ReleaseRules
	// Given are the keys the policy file sets (the others have their
	// defaults), to say where each setting came from.
	Given map[string]bool
}

// PolicyKey is a public key file a policy names, with its key id.
type PolicyKey struct {
	Path string `json:"path"`
	ID   string `json:"id"`
}

// Active reports whether a policy applies.
func (p *Policy) Active() bool { return p != nil && p.Path != "" }

// ApprovalRequired returns the policy's require_approval and whether the
// policy sets it (else the store's setting decides).
func (p *Policy) ApprovalRequired() (required, set bool) {
	if !p.Active() || p.RequireApproval == nil {
		return false, false
	}
	return *p.RequireApproval, true
}

// CheckWeakerSandbox returns a *PolicyError when a weaker sandbox is
// requested and the policy forbids it.
func (p *Policy) CheckWeakerSandbox(requested bool) error {
	if !requested || !p.Active() || p.AllowWeakerSandbox {
		return nil
	}
	return &PolicyError{Path: p.Path, Err: errors.New("allow_weaker_sandbox is false: a run may not use --allow-weaker-sandbox on this host; use a runtime that gives every guarantee (--runtime runc)")}
}

// CheckSetting returns a *PolicyError when setting the store's key to value
// would contradict the policy (it would have no effect while the policy
// holds, and would mislead whoever reads the store's settings).
func (p *Policy) CheckSetting(key, value string) error {
	req, set := p.ApprovalRequired()
	if key != SettingRequireApproval || !set || value == fmt.Sprint(req) {
		return nil
	}
	return &PolicyError{Path: p.Path, Err: fmt.Errorf("require_approval is %t: it outranks the store's %s, which may not be set to %s", req, key, value)}
}

// PolicyError is a site policy that cannot be used (Err says why), or an
// action it forbids. It matches ErrPolicy.
type PolicyError struct {
	Path string
	Err  error
}

func (e *PolicyError) Error() string { return fmt.Sprintf("site policy %s: %v", e.Path, e.Err) }
func (e *PolicyError) Unwrap() error { return e.Err }

// Is lets errors.Is(err, ErrPolicy) match.
func (e *PolicyError) Is(target error) bool { return target == ErrPolicy }
