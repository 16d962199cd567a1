package core

import (
	"testing"
	"time"
)

func TestChooseApproval(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	now := day(20)
	ok := SignedApproval{KeyID: "k", At: day(1), Verified: true, SHA256: "ok"}
	expired := SignedApproval{KeyID: "k", At: day(1), Expires: day(10), Verified: true}
	revoke := SignedApproval{KeyID: "k", At: day(5), Revoke: true, Note: "cve", Verified: true}
	untrusted := SignedApproval{KeyID: "other", At: day(6)}
	untrustedRevoke := SignedApproval{KeyID: "other", At: day(7), Revoke: true}
	later := SignedApproval{KeyID: "k", At: day(8), Verified: true, SHA256: "later"}
	for _, c := range []struct {
		name     string
		as       []SignedApproval
		unsigned bool
		want     string // chosen SHA256, or the refusal reason
	}{
		{"none", nil, false, ApprovalNever},
		{"unsigned", nil, true, ApprovalUnsigned},
		{"untrusted", []SignedApproval{untrusted}, true, ApprovalUntrusted},
		{"expired", []SignedApproval{expired, untrusted}, false, ApprovalExpired},
		{"revoked", []SignedApproval{ok, revoke}, false, ApprovalRevoked},
		{"approved after the revocation", []SignedApproval{ok, revoke, later}, false, "later"},
		{"an untrusted revocation does not count", []SignedApproval{ok, untrustedRevoke}, false, "ok"},
		{"ok", []SignedApproval{ok}, false, "ok"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ChooseApproval(c.as, c.unsigned, now)
			switch {
			case err != nil && err.Reason != c.want:
				t.Errorf("refused %q, want %q", err.Reason, c.want)
			case err == nil && got.SHA256 != c.want:
				t.Errorf("chose %q, want %q", got.SHA256, c.want)
			}
		})
	}
}
