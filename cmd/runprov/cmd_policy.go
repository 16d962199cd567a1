package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/policy"
)

func newPolicyCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "The site policy in force",
		Long: `A site policy is a JSON file kept by an administrator at ` + policy.DefaultPath + `
(or named by $` + policy.Env + ` when that file does not exist). Its settings outrank
every store's; only root may be able to change it.`,
	}
	cmd.AddCommand(newPolicyShowCmd(a))
	return cmd
}

// policySetting is one effective setting and where it came from: the
// policy file, the store's config, or the default.
type policySetting struct {
	Value  any    `json:"value"`
	Source string `json:"source"`
}

func newPolicyShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Print the effective settings and where each came from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The store's own setting counts where the policy is silent; a
			// policy can be checked before any store exists.
			if _, err := a.open(cmd.Context()); err != nil && !errors.Is(err, core.ErrNoStore) {
				return err
			}
			names, settings, err := effectiveSettings(cmd.Context(), a)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, map[string]any{"policy": a.policy.Path, "settings": settings})
			}
			if a.policy.Active() {
				fmt.Fprintf(a.stdout, "site policy: %s\n", a.policy.Path)
			} else {
				fmt.Fprintf(a.stdout, "site policy: none (%s does not exist)\n", sitePolicyPath)
			}
			tb := newTable(a, "SETTING", "VALUE", "SOURCE")
			for _, n := range names {
				tb.row(n, policyValueText(settings[n].Value), settings[n].Source)
			}
			return tb.flush()
		},
	}
}

// effectiveSettings returns the settings in display order.
func effectiveSettings(ctx context.Context, a *app) ([]string, map[string]policySetting, error) {
	p := a.policy
	from := func(key string, v any, dflt any) policySetting {
		if p.Active() && p.Given[key] {
			return policySetting{v, p.Path}
		}
		if p.Active() {
			return policySetting{dflt, "default under the site policy"}
		}
		return policySetting{dflt, "default"}
	}
	approval, err := approvalSetting(ctx, a)
	if err != nil {
		return nil, nil, err
	}
	s := map[string]policySetting{
		"require_approval":       approval,
		"approver_keys":          from("approver_keys", p.ApproverKeys, []core.PolicyKey{}),
		"approvals_dir":          from("approvals_dir", p.ApprovalsDir, ""),
		"sign_key":               from("sign_key", p.SignKey, ""),
		"require_signed_records": from("require_signed_records", p.RequireSignedRecords, false),
		// Without a policy, --allow-weaker-sandbox is the analyst's choice.
		"allow_weaker_sandbox": from("allow_weaker_sandbox", p.AllowWeakerSandbox, !p.Active()),
		"allow_cdi_hooks":      from("allow_cdi_hooks", p.AllowCDIHooks, false),
	}
	names := []string{"require_approval", "approver_keys", "approvals_dir", "sign_key", "require_signed_records", "allow_weaker_sandbox", "allow_cdi_hooks"}
	given, rules := p.ReleaseRules, p.Release()
	for _, r := range []struct {
		key        string
		value, def any
	}{
		{"release_dir", given.Dir, ""},
		{"output_checker_keys", given.CheckerKeys, []core.PolicyKey{}},
		{"release_reviews_required", rules.ReviewsRequired, core.DefaultReleaseReviews},
		{"release_max_bytes", rules.MaxBytes, core.DefaultReleaseMaxBytes},
		{"release_allowed_types", rules.Types, core.DefaultReleaseTypes},
		{"release_max_rows", rules.MaxRows, core.DefaultReleaseMaxRows},
		{"release_forbidden_columns", rules.ForbiddenColumns, core.DefaultReleaseForbidden},
		{"release_count_columns", rules.CountColumns, core.DefaultReleaseCountColumns},
		{"release_min_count", rules.MinCount, core.DefaultReleaseMinCount},
	} {
		s[r.key] = from(r.key, r.value, r.def)
		names = append(names, r.key)
	}
	return names, s, nil
}

func approvalSetting(ctx context.Context, a *app) (policySetting, error) {
	if req, set := a.policy.ApprovalRequired(); set {
		return policySetting{req, a.policy.Path}, nil
	}
	if a.store == nil {
		return policySetting{false, "default (no store)"}, nil
	}
	v, ok, err := a.store.Setting(ctx, core.SettingRequireApproval)
	if err != nil || !ok {
		return policySetting{false, "default"}, err
	}
	return policySetting{v == "true", "store config " + core.SettingRequireApproval}, nil
}

func policyValueText(v any) string {
	switch x := v.(type) {
	case string:
		if x == "" {
			return "-"
		}
		return x
	case []core.PolicyKey:
		if len(x) == 0 {
			return "-"
		}
		parts := make([]string, len(x))
		for i, k := range x {
			parts[i] = fmt.Sprintf("%s (id %s)", k.Path, k.ID)
		}
		return strings.Join(parts, ", ")
	case []string:
		return strings.Join(x, ", ")
	}
	return fmt.Sprint(v)
}
