package main

import (
	"time"

	"github.com/spf13/cobra"
)

func newImageApprovalsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "approvals DIGEST",
		Short: "List the signed approvals and revocations of an image, verified",
		Long: `List the signed approvals and revocations of an image (its index and
manifests named by DIGEST), from the store and from the site policy's
approvals_dir, each verified against the policy's approver_keys: VERIFIED is
yes only for a signature by one of them. Envelopes in approvals_dir that
cannot be read are listed with the problem. --json prints every field.`,
		Args: exactArgs("image approvals", "which image? (runprov image ls lists their digests)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := a.readImages(ctx)
			if err != nil {
				return err
			}
			d, err := s.Lookup(ctx, args[0])
			if err != nil {
				return err
			}
			digests := []string{d}
			if rec, err := s.Record(ctx, d); err == nil && rec.IndexDigest != "" {
				digests = append(digests, rec.IndexDigest)
			}
			as, err := signedApprovals(ctx, a.store, a.policy, digests)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, nonNil(as))
			}
			tb := newTable(a, "KIND", "KEY", "VERIFIED", "AT", "EXPIRES", "SOURCE", "NOTE")
			for _, x := range as {
				if x.Problem != "" {
					tb.row("?", "", "no", "", "", x.Source, x.Problem)
					continue
				}
				kind, exp := "approve", ""
				if x.Revoke {
					kind = "revoke"
				}
				if !x.Expires.IsZero() {
					exp = x.Expires.Format(time.DateOnly)
				}
				tb.row(kind, shortKey(x.KeyID), yesNo(x.Verified), a.when(x.At), exp, x.Source, x.Note)
			}
			return tb.flush()
		},
	}
}

func shortKey(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}
