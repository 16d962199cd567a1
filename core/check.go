package core

import "context"

// Problem is one inconsistency found by a Checker.
type Problem struct {
	Where string `json:"where"` // e.g. `repo "default"` or `commit 1a2b3c4`
	What  string `json:"what"`
}

// Checker is a component that can verify what it keeps (runprov fsck asks
// every Checker in the Terminal). Check calls report for every problem and
// returns an error only when it could not check at all.
type Checker interface {
	Component
	Check(ctx context.Context, report func(Problem)) error
}
