package main

import (
	"context"
	"errors"
	"os"

	"github.com/runprov/runprov/core"
	imagedrv "github.com/runprov/runprov/drivers/image"
	"github.com/runprov/runprov/drivers/policy"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/plugins/producer"
)

// sitePolicyPath is policy.DefaultPath; tests point it elsewhere so that a
// policy installed on the test machine does not change their outcome.
var sitePolicyPath = policy.DefaultPath

// loadPolicy reads the site policy once per invocation, before any store is
// opened: a policy that cannot be trusted stops every command.
func (a *app) loadPolicy() error {
	if a.policy != nil {
		return nil
	}
	p, err := policy.Load(sitePolicyPath, os.Getenv(policy.Env), policyKeys)
	if err != nil {
		if errors.Is(err, core.ErrUnsafe) {
			return advise(err, advicePolicyUnsafe, "")
		}
		return advise(err, advicePolicyFile, "")
	}
	a.policy = p
	return nil
}

// policyImages is the image store with the site policy's require_approval,
// when it sets one, in place of the store's setting.
type policyImages struct {
	*imagedrv.Store
	policy    *core.Policy
	approvals *sqlite.Store // signed approvals kept in the store
}

var _ producer.ImageStore = policyImages{}

func (s policyImages) CheckApproval(ctx context.Context, img *core.ResolvedImage) error {
	if signedApprovalsRequired(s.policy) {
		return s.checkSigned(ctx, img)
	}
	required, set := s.policy.ApprovalRequired()
	if !set {
		return s.Store.CheckApproval(ctx, img)
	}
	err := core.CheckApproval(required, img)
	var na *core.NotApprovedError
	if errors.As(err, &na) {
		na.Policy = s.policy.Path
	}
	return err
}
