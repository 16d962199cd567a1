package release

import (
	"context"
	"encoding/json"
	"fmt"
)

// RunCheck is what the request's copy of the run's record says about the
// run: whether it is signed, whether the signature verified and with whose
// key, and whether each requested file is one of its subjects.
type RunCheck struct {
	Signed   bool   `json:"signed"`
	Verified bool   `json:"verified"`
	By       string `json:"verified_by,omitempty"` // "the requester's key", "the site's key"
	// Problem is what makes the evidence untrustworthy: a signature that
	// fails with the key it names, a record that does not parse, a file
	// the record does not name.
	Problem string `json:"problem,omitempty"`
}

// Status is the check in a few words, for show and the HTML page.
func (c RunCheck) Status() string {
	switch {
	case c.Problem != "":
		return "PROBLEM: " + c.Problem
	case c.Verified:
		return "signed; verified with " + c.By
	case c.Signed:
		return "signed by a key neither the requester nor the site holds: not verified here"
	}
	return "unsigned"
}

// checkRun verifies the run's record kept in request b: its signature with
// the requester's key (when the run was signed with it) or the site's
// record key, and that every file of the request is one of its subjects.
func (r *Release) checkRun(ctx context.Context, b *Bundle) RunCheck {
	q := b.Request
	data, err := r.Spool.ReadRequestFile(ctx, q.ID, q.Run.Record)
	if err != nil {
		return RunCheck{Problem: "the run's record: " + err.Error()}
	}
	c := RunCheck{Signed: q.Run.Signed}
	if sum(data) != q.Run.RecordSHA256 {
		return RunCheck{Signed: c.Signed, Problem: "the run's record is not the one requested (sha256 differs)"}
	}
	payload := data
	if c.Signed {
		if payload, _, err = r.Verifier.Open(data); err != nil {
			return RunCheck{Signed: true, Problem: "the run's record: " + err.Error()}
		}
		c.verify(ctx, r, b, data)
	}
	if c.Problem == "" {
		c.Problem = subjectsCover(payload, q.Files)
	}
	return c
}

// verify tries the keys that may have signed the run: the requester's own
// (a personal key) and the site's.
func (c *RunCheck) verify(ctx context.Context, r *Release, b *Bundle, env []byte) {
	q := b.Request
	keys := map[string][]byte{}
	if pub, err := r.Spool.ReadRequestFile(ctx, q.ID, "requester.pub"); err == nil && b.Signed {
		keys["the requester's key"] = pub
	}
	if r.SiteKey != nil {
		keys["the site's key"] = r.SiteKey
	}
	for _, by := range sortedKeys(keys) {
		id, err := r.Verifier.KeyID(keys[by])
		if err != nil || id != q.Run.SignerKeyID {
			continue
		}
		if kid, _, err := r.Verifier.Verify(ctx, env, PayloadTypeInToto, [][]byte{keys[by]}); err != nil || kid != id {
			c.Problem = "the run's record does not verify with " + by + ", which it names: it was changed"
			return
		}
		c.Verified, c.By = true, by
		return
	}
}

// subjectsCover says which file the in-toto statement does not name.
func subjectsCover(payload []byte, files []File) string {
	var st struct {
		Subject []Subject `json:"subject"`
	}
	if err := json.Unmarshal(payload, &st); err != nil {
		return "the run's record is not an in-toto statement"
	}
	have := map[string]bool{}
	for _, s := range st.Subject {
		have[s.Digest["sha256"]] = true
	}
	for _, f := range files {
		if !have[f.SHA256] {
			return fmt.Sprintf("file %s (sha256 %s) is not an output of the run's record", f.Name, f.SHA256)
		}
	}
	return ""
}
