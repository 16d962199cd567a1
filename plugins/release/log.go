package release

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/runprov/runprov/core"
)

// LogLine is a log entry as read: the entry, its file and whether a
// signature over it verified.
type LogLine struct {
	Entry
	Name   string `json:"file"`
	Signed bool   `json:"signed"`
}

// readLog reads the log and checks it: numbers without gaps, each entry
// naming the hash of the one before, each signature verifying with the key
// the entry names. What does not hold is returned as problems.
func (r *Release) readLog(ctx context.Context) ([]LogLine, []string, error) {
	raw, err := r.Spool.Log(ctx)
	if err != nil {
		return nil, nil, err
	}
	var out []LogLine
	var problems []string
	prev, want := "", 1
	for _, e := range raw {
		l, p := r.readEntry(ctx, e)
		if p == "" && l != nil {
			p = r.ownedBy(ctx, "log", e.Name, l.Actor.UID)
		}
		switch {
		case p != "":
		case e.Seq != want:
			p = fmt.Sprintf("expected entry %d, found %s: an entry was removed or added", want, e.Name)
		case l.Seq != e.Seq:
			p = fmt.Sprintf("says it is entry %d", l.Seq)
		case l.Prev != prev:
			p = "does not follow the entry before it (its prev is not that entry's sha256): an entry before it was changed, removed or added"
		}
		if p != "" {
			problems = append(problems, fmt.Sprintf("log %s: %s", e.Name, p))
		}
		prev, want = sum(e.Data), e.Seq+1
		if l != nil {
			out = append(out, *l)
		}
	}
	return out, problems, nil
}

// readEntry decodes one entry: a DSSE envelope (signed) or the entry's
// JSON. A problem is what makes it untrustworthy.
func (r *Release) readEntry(ctx context.Context, e core.SpoolEntry) (*LogLine, string) {
	l := &LogLine{Name: e.Name}
	data := e.Data
	signed := bytes.Contains(data, []byte(`"payloadType"`))
	if signed {
		payload, _, err := r.Verifier.Open(data)
		if err != nil {
			return nil, err.Error()
		}
		data = payload
	}
	if err := json.Unmarshal(data, &l.Entry); err != nil || l.Type != LogType {
		return nil, "not a release log entry"
	}
	if !signed {
		if l.Actor.KeyID != "" {
			return l, "names key " + l.Actor.KeyID + " but is not signed"
		}
		return l, ""
	}
	kid, _, err := r.Verifier.Verify(ctx, e.Data, PayloadTypeLog, [][]byte{[]byte(l.PublicKey)})
	if err != nil || kid != l.Actor.KeyID {
		return l, "its signature does not verify with the key it names: it was changed"
	}
	l.Signed = true
	return l, ""
}

// appendLog adds an entry, signed by s unless it is nil.
func (r *Release) appendLog(ctx context.Context, e Entry, s Signer) error {
	if err := r.Spool.Ready(ctx); err != nil {
		return err
	}
	e.Type = LogType
	e.Time = stamp(r.now())
	if s != nil {
		e.Actor.KeyID, e.PublicKey = s.KeyID(), string(s.PublicPEM())
	}
	_, err := r.Spool.Append(ctx, func(seq int, prev string) ([]byte, error) {
		e.Seq, e.Prev = seq, prev
		data, err := json.Marshal(e)
		if err != nil || s == nil {
			return data, err
		}
		return s.Sign(ctx, PayloadTypeLog, data)
	})
	if err != nil {
		return fmt.Errorf("append to the release log: %w", err)
	}
	return nil
}

// logHead is the hex sha256 of the log's last entry, "" when empty.
func (r *Release) logHead(ctx context.Context) (string, error) {
	raw, err := r.Spool.Log(ctx)
	if err != nil || len(raw) == 0 {
		return "", err
	}
	return sum(raw[len(raw)-1].Data), nil
}

// Log returns the log's entries and the problems its check found.
func (r *Release) Log(ctx context.Context) ([]LogLine, []string, error) {
	return r.readLog(ctx)
}

// Verify checks the whole spool: the log (see readLog), that every request
// and vote is what its log entry names, and that every request and vote in
// the spool has one. It returns the problems found; none means verified.
func (r *Release) Verify(ctx context.Context) ([]string, error) {
	entries, problems, err := r.readLog(ctx)
	if err != nil {
		return nil, err
	}
	votes, err := r.Spool.Votes(ctx, "")
	if err != nil {
		return nil, err
	}
	ids, err := r.Spool.RequestIDs(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, e := range entries {
		switch e.Action {
		case ActionRequest:
			seen["request "+e.Request] = true
			data, err := r.Spool.ReadRequestFile(ctx, e.Request, "request.json")
			if err != nil {
				problems = append(problems, fmt.Sprintf("request %s (log %s): %v", e.Request, e.Name, err))
			} else if got := sum(data); got != e.SHA256 {
				problems = append(problems, fmt.Sprintf("request %s: request.json has sha256 %s, the log (%s) says %s: it was changed", e.Request, got, e.Name, e.SHA256))
			}
		case ActionVote:
			n := strings.TrimPrefix(e.Object, "votes/")
			seen["vote "+n] = true
			if _, ok := r.Checkers[e.Actor.KeyID]; !ok || !e.Signed {
				problems = append(problems, fmt.Sprintf("log %s: a vote not signed by an output checker's key (key %q)", e.Name, e.Actor.KeyID))
			}
			data, ok := votes[n]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("vote %s on request %s (log %s) is missing: it was removed", n, e.Request, e.Name))
			case sum(data) != e.SHA256:
				problems = append(problems, fmt.Sprintf("vote %s: sha256 %s, the log (%s) says %s: it was changed", n, sum(data), e.Name, e.SHA256))
			}
		}
	}
	for _, id := range ids {
		if !seen["request "+id] {
			problems = append(problems, fmt.Sprintf("request %s has no entry in the log", id))
		}
	}
	for n := range votes {
		if !seen["vote "+n] {
			problems = append(problems, fmt.Sprintf("vote %s has no entry in the log", n))
		}
	}
	for _, id := range ids {
		problems = append(problems, r.checkSnapshots(ctx, id)...)
	}
	return problems, nil
}

// checkSnapshots re-hashes a request's file snapshots and its copy of the
// run's record.
func (r *Release) checkSnapshots(ctx context.Context, id string) []string {
	data, err := r.Spool.ReadRequestFile(ctx, id, "request.json")
	if err != nil {
		return nil // said above
	}
	var req Request
	if json.Unmarshal(data, &req) != nil {
		return []string{fmt.Sprintf("request %s: request.json does not parse", id)}
	}
	var out []string
	if rec, err := r.Spool.ReadRequestFile(ctx, id, req.Run.Record); err != nil || sum(rec) != req.Run.RecordSHA256 {
		out = append(out, fmt.Sprintf("request %s: the run's record %s is not the one requested: it was changed or removed", id, req.Run.Record))
	}
	for _, f := range req.Files {
		if got, err := r.snapshotSum(ctx, id, f); err != nil || got != f.SHA256 {
			out = append(out, fmt.Sprintf("request %s: file %s: %s", id, f.Name, changed(f, got, err)))
		}
	}
	return out
}

func changed(f File, got string, err error) string {
	if err != nil {
		return fmt.Sprintf("its snapshot cannot be read: %v", err)
	}
	return fmt.Sprintf("its snapshot has sha256 %s, not the %s that was requested and voted on: it changed after it was requested; request it again", got, f.SHA256)
}
