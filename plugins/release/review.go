package release

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
)

// ReviewInput is a checker's vote on a request.
type ReviewInput struct {
	Actor    Person
	Signer   Signer
	Decision string   // Approve, Reject or Return
	Paths    []string // files voted on; none: every file of the request
	Note     string
}

// Review signs a vote and adds it to the spool. The key must be an output
// checker's; the requester (same key or same OS account) may not vote; a
// file whose snapshot changed cannot be voted on.
func (r *Release) Review(ctx context.Context, prefix string, in ReviewInput) (*CastVote, error) {
	b, err := r.Open(ctx, prefix)
	if err != nil {
		return nil, err
	}
	kid := in.Signer.KeyID()
	in.Actor.KeyID = kid
	if _, ok := r.Checkers[kid]; !ok {
		return nil, refusef("key %s is not an output checker's: only the keys of the policy's output_checker_keys (%s) may vote", kid, r.policyName())
	}
	if req := b.Request.Requester; req.Same(in.Actor) {
		return nil, refusef("%s requested release %s, and may not vote on it: a request needs checkers other than its requester (same OS user %q or same key)", describe(in.Actor), b.Request.ID, req.User)
	}
	files, err := b.files(in.Paths)
	if err != nil {
		return nil, err
	}
	st := voteStatement{Type: StatementType, PredicateType: VoteType}
	for _, f := range files {
		if got, err := r.snapshotSum(ctx, b.Request.ID, f); err != nil || got != f.SHA256 {
			return nil, refusef("file %s of request %s: %s", f.Name, b.Request.ID, changed(f, got, err))
		}
		st.Subject = append(st.Subject, Subject{Name: f.Name, Digest: map[string]string{"sha256": f.SHA256}})
	}
	if err := r.Spool.Ready(ctx); err != nil {
		return nil, err
	}
	head, err := r.logHead(ctx)
	if err != nil {
		return nil, err
	}
	st.Predicate = Vote{Request: b.Request.ID, RequestSHA256: b.SHA256, Decision: in.Decision, Note: in.Note, Checker: in.Actor, Time: stamp(r.now()), LogHead: head}
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	env, err := in.Signer.Sign(ctx, PayloadTypeInToto, payload)
	if err != nil {
		return nil, fmt.Errorf("sign the vote: %w", err)
	}
	name, err := r.Spool.PutVote(ctx, b.Request.ID, kid[:16], env)
	if err != nil {
		return nil, fmt.Errorf("write the vote: %w", err)
	}
	e := Entry{Action: ActionVote, Request: b.Request.ID, Actor: in.Actor, Object: "votes/" + name, SHA256: sum(env), Note: in.Decision + ": " + in.Note}
	if err := r.appendLog(ctx, e, in.Signer); err != nil {
		return nil, err
	}
	cv := &CastVote{Vote: st.Predicate, Files: subjectFiles(st.Subject), File: name, SHA256: sum(env), Verified: true}
	return cv, nil
}

func (r *Release) policyName() string {
	if r.Policy == "" {
		return "no site policy"
	}
	return r.Policy
}

func describe(p Person) string {
	s := fmt.Sprintf("user %s (uid %d)", p.User, p.UID)
	if p.KeyID != "" {
		s += " with key " + p.KeyID
	}
	return s
}

func subjectFiles(ss []Subject) map[string]string {
	m := map[string]string{}
	for _, s := range ss {
		m[s.Name] = s.Digest["sha256"]
	}
	return m
}

// votes reads the votes of request id, each verified against the output
// checkers' keys; one that does not verify is listed with its problem.
func (r *Release) votes(ctx context.Context, id string) ([]CastVote, error) {
	raw, err := r.Spool.Votes(ctx, id)
	if err != nil {
		return nil, err
	}
	var trusted [][]byte
	for _, k := range sortedKeys(r.Checkers) {
		trusted = append(trusted, r.Checkers[k])
	}
	var out []CastVote
	for n, data := range raw {
		cv := CastVote{File: n, SHA256: sum(data)}
		kid, payload, verr := r.Verifier.Verify(ctx, data, PayloadTypeInToto, trusted)
		if verr != nil {
			cv.Problem = "its signature does not verify with an output checker's key: not counted"
			if payload, _, err = r.Verifier.Open(data); err != nil {
				cv.Problem = "not a signed vote: not counted"
			}
		}
		var st voteStatement
		if payload != nil && json.Unmarshal(payload, &st) == nil && st.PredicateType == VoteType {
			cv.Vote, cv.Files = st.Predicate, subjectFiles(st.Subject)
		} else if cv.Problem == "" {
			cv.Problem = "not a release vote: not counted"
		}
		if cv.Problem == "" {
			if p := r.ownedBy(ctx, "votes", n, cv.Checker.UID); p != "" {
				cv.Problem = p + ": not counted"
			}
		}
		switch {
		case cv.Problem != "":
		case kid != cv.Checker.KeyID:
			cv.Problem = "signed by key " + kid + ", not the key it names: not counted"
		case cv.Request != id:
			cv.Problem = "a vote on request " + cv.Request + ": not counted"
		default:
			cv.Verified = true
		}
		out = append(out, cv)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Time != out[j].Time {
			return out[i].Time < out[j].Time
		}
		return out[i].File < out[j].File
	})
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// FileStatus is where a file of a request stands.
type FileStatus struct {
	Name      string   `json:"name"`
	SHA256    string   `json:"sha256"`
	Approvals int      `json:"approvals"`
	Required  int      `json:"required"`
	Approvers []Person `json:"approvers"`
	Rejected  bool     `json:"rejected"`
	Returned  bool     `json:"returned"`
	// Released: enough independent approvals, no rejection, and the
	// snapshot is what was voted on.
	Released bool     `json:"released"`
	Reasons  []string `json:"reasons,omitempty"`
}

// Tally counts the votes on each file of b: the latest verified vote of
// each checker counts, once per person (a key or an OS account approving
// twice is one approval); any rejection blocks the file; a vote on other
// content (the file changed after it) does not count.
func (r *Release) Tally(b *Bundle, votes []CastVote) []FileStatus {
	var out []FileStatus
	for _, f := range b.Request.Files {
		st := FileStatus{Name: f.Name, SHA256: f.SHA256, Required: r.Rules.ReviewsRequired, Approvers: []Person{}}
		latest := map[string]CastVote{}
		for _, v := range votes {
			voted, ok := v.Files[f.Name]
			switch {
			case !v.Verified || !ok:
			case voted != f.SHA256:
				st.Reasons = append(st.Reasons, fmt.Sprintf("the vote of %s is on other content (sha256 %s): the file changed after its votes", describe(v.Checker), voted))
			case b.Request.Requester.Same(v.Checker):
				st.Reasons = append(st.Reasons, fmt.Sprintf("the vote of %s is the requester's: not counted", describe(v.Checker)))
			default:
				if v.Decision == Reject {
					st.Rejected = true
					st.Reasons = append(st.Reasons, fmt.Sprintf("rejected by %s: %s", describe(v.Checker), v.Note))
				}
				latest[v.Checker.KeyID] = v
			}
		}
		for _, k := range sortedKeys(latest) {
			v := latest[k]
			switch v.Decision {
			case Return:
				st.Returned = true
				st.Reasons = append(st.Reasons, fmt.Sprintf("returned by %s: %s", describe(v.Checker), v.Note))
			case Approve:
				if !independent(st.Approvers, v.Checker) {
					st.Reasons = append(st.Reasons, fmt.Sprintf("the approval of %s is not independent of another's (same key or OS user): counted once", describe(v.Checker)))
					continue
				}
				st.Approvers = append(st.Approvers, v.Checker)
			}
		}
		st.Approvals = len(st.Approvers)
		if !st.Rejected && st.Approvals < st.Required {
			st.Reasons = append(st.Reasons, fmt.Sprintf("%d of the %d independent approvals it needs (release_reviews_required)", st.Approvals, st.Required))
		}
		st.Released = !st.Rejected && st.Approvals >= st.Required
		out = append(out, st)
	}
	return out
}

func independent(ps []Person, p Person) bool {
	for _, q := range ps {
		if q.Same(p) {
			return false
		}
	}
	return true
}

// View is a request as a person sees it: its votes only once they have
// voted on it, or when they asked for it.
type View struct {
	Request   Request      `json:"request"`
	SHA256    string       `json:"sha256"`
	Signed    bool         `json:"signed"`
	Votes     []CastVote   `json:"votes"`
	Hidden    int          `json:"hidden_votes"`
	Status    []FileStatus `json:"status,omitempty"`
	Run       RunCheck     `json:"run_check"`
	Snapshots []string     `json:"snapshot_problems,omitempty"`
}

// Show returns request prefix as viewer may see it and logs the view. A
// checker sees the other votes only once they have voted on it themselves;
// the requester sees them all.
func (r *Release) Show(ctx context.Context, prefix string, viewer Person) (*View, error) {
	b, err := r.Open(ctx, prefix)
	if err != nil {
		return nil, err
	}
	votes, err := r.votes(ctx, b.Request.ID)
	if err != nil {
		return nil, err
	}
	v := &View{Request: b.Request, SHA256: b.SHA256, Signed: b.Signed, Votes: []CastVote{}}
	maySee := b.Request.Requester.UID == viewer.UID
	for _, cv := range votes {
		if cv.Verified && cv.Checker.UID == viewer.UID {
			maySee = true
		}
	}
	for _, cv := range votes {
		if maySee || cv.Checker.UID == viewer.UID {
			v.Votes = append(v.Votes, cv)
		} else {
			v.Hidden++
		}
	}
	if maySee {
		v.Status = r.Tally(b, votes)
	}
	v.Snapshots = r.checkSnapshots(ctx, b.Request.ID)
	v.Run = r.checkRun(ctx, b)
	if err := r.appendLog(ctx, Entry{Action: ActionView, Request: b.Request.ID, Actor: viewer}, nil); err != nil {
		return nil, err
	}
	return v, nil
}
