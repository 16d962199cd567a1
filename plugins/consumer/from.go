package consumer

import (
	"context"

	"github.com/runprov/runprov/core"
)

// AddFromRequest consumes the Runfiles of a remote repository.
type AddFromRequest struct {
	Repo   string // core.DefaultRepo when empty; created when missing
	Remote core.Remote
	Ref    string   // branch, tag or refs/... name; "" is the remote's HEAD
	Paths  []string // globs selecting Runfiles; DefaultRunfileGlobs when empty
}

// AddFrom initialises a repository from a git remote: the history at req.Ref becomes the
// repository's, and every Runfile that history adds or changes is validated
// and indexed, as a pull does (one invalid Runfile refuses it all). Into a
// repository that already has commits it is a pull of req.Ref: a
// fast-forward, or an error wrapping core.ErrDiverged.
//
// The history is kept rather than replayed as new commits so that the
// repository and the remote stay one history: later pulls fast-forward and
// commit hashes match between the sites.
func (c *Consumer) AddFrom(ctx context.Context, req AddFromRequest) (PullResult, error) {
	return c.fetchInto(ctx, req.Repo, req.Remote, req.Ref, req.Paths, "add --from")
}
