package core

// Problem is one inconsistency found when a store component verifies what it
// keeps (runprov fsck): where it is and what is wrong.
type Problem struct {
	Where string `json:"where"` // e.g. `repo "default"` or `commit 1a2b3c4`
	What  string `json:"what"`
}
