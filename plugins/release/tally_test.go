package release

import (
	"strings"
	"testing"
)

// TestTally: independent approvals per file; the requester's vote, a vote
// on other content and a second key of the same person do not count; any
// rejection blocks; a checker's latest vote counts.
func TestTally(t *testing.T) {
	req := Person{User: "ana", UID: 1000, KeyID: "ka"}
	b := &Bundle{Request: Request{Requester: req, Files: []File{{Name: "a.csv", SHA256: "aa"}}}}
	r := &Release{Rules: (&Release{}).Rules}
	r.Rules.ReviewsRequired = 2
	c1, c2 := Person{User: "c1", UID: 1001, KeyID: "k1"}, Person{User: "c2", UID: 1002, KeyID: "k2"}
	c1b := Person{User: "c1", UID: 1001, KeyID: "k1b"}
	vote := func(p Person, d, sha, at string) CastVote {
		return CastVote{Vote: Vote{Checker: p, Decision: d, Time: at, Note: d + " by " + p.User}, Files: map[string]string{"a.csv": sha}, Verified: true}
	}
	for _, tc := range []struct {
		name     string
		votes    []CastVote
		released bool
		reason   string
	}{
		{"two checkers", []CastVote{vote(c1, Approve, "aa", "1"), vote(c2, Approve, "aa", "2")}, true, ""},
		{"one checker", []CastVote{vote(c1, Approve, "aa", "1")}, false, "1 of the 2"},
		{"one person, two keys", []CastVote{vote(c1, Approve, "aa", "1"), vote(c1b, Approve, "aa", "2")}, false, "not independent"},
		{"the requester", []CastVote{vote(c1, Approve, "aa", "1"), vote(req, Approve, "aa", "2")}, false, "the requester's"},
		{"other content", []CastVote{vote(c1, Approve, "aa", "1"), vote(c2, Approve, "bb", "2")}, false, "changed after its votes"},
		{"a rejection", []CastVote{vote(c1, Approve, "aa", "1"), vote(c2, Approve, "aa", "2"), vote(Person{User: "c3", UID: 1003, KeyID: "k3"}, Reject, "aa", "3")}, false, "rejected by"},
		{"latest vote counts", []CastVote{vote(c1, Approve, "aa", "1"), vote(c2, Approve, "aa", "2"), vote(c2, Return, "aa", "3")}, false, "returned by"},
		{"unverified", []CastVote{vote(c1, Approve, "aa", "1"), {Vote: Vote{Checker: c2, Decision: Approve}, Files: map[string]string{"a.csv": "aa"}}}, false, "1 of the 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := r.Tally(b, tc.votes)[0]
			if st.Released != tc.released || !strings.Contains(strings.Join(st.Reasons, "; "), tc.reason) {
				t.Errorf("released %t (want %t), reasons %q (want %q)", st.Released, tc.released, st.Reasons, tc.reason)
			}
		})
	}
}
