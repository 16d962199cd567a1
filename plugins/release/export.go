package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/runprov/runprov/core"
)

// ExportInput is who exports a request, and where to.
type ExportInput struct {
	Actor  Person
	Signer Signer // signs the release statement and the log entry
	Dir    string // must not exist
}

// Export is what export wrote.
type Export struct {
	Request  string       `json:"request"`
	Dir      string       `json:"dir"`
	Released []File       `json:"released"`
	Withheld []FileStatus `json:"withheld"`
	// Envelope and Crate are the files written beside the released ones.
	Envelope string `json:"envelope"`
	Crate    string `json:"crate"`
}

// Release files written beside the released files.
const (
	EnvelopeFile = "release.intoto.dsse.json"
	CrateFile    = "ro-crate-metadata.json"
)

type releasePredicate struct {
	Request         requestSummary `json:"request"`
	Votes           []voteSummary  `json:"votes"`
	Runs            []RunRef       `json:"runs"`
	ReviewsRequired int            `json:"reviews_required"`
	Policy          string         `json:"policy"`
	ExportedBy      Person         `json:"exported_by"`
	ExportedAt      string         `json:"exported_at"`
}

type requestSummary struct {
	ID        string `json:"id"`
	SHA256    string `json:"sha256"`
	Created   string `json:"created"`
	Requester Person `json:"requester"`
	Note      string `json:"note"`
}

type voteSummary struct {
	File     string            `json:"file"`
	SHA256   string            `json:"sha256"`
	Checker  Person            `json:"checker"`
	Decision string            `json:"decision"`
	Files    map[string]string `json:"files"`
	Time     string            `json:"time"`
	Note     string            `json:"note"`
}

type releaseStatement struct {
	Type          string           `json:"_type"`
	Subject       []Subject        `json:"subject"`
	PredicateType string           `json:"predicateType"`
	Predicate     releasePredicate `json:"predicate"`
}

// Export verifies the spool and the request against the policy and writes
// the approved files to in.Dir, with a signed in-toto Statement of them and
// a Five Safes RO-Crate. With no file approved it is refused
// (core.ErrReleaseRefused) and nothing is written; a spool that does not
// verify is refused (core.ErrUnverified).
func (r *Release) Export(ctx context.Context, prefix string, in ExportInput) (*Export, error) {
	if problems, err := r.Verify(ctx); err != nil {
		return nil, err
	} else if len(problems) > 0 {
		return nil, fmt.Errorf("%w: the release spool does not verify: %s", core.ErrUnverified, strings.Join(problems, "; "))
	}
	b, err := r.Open(ctx, prefix)
	if err != nil {
		return nil, err
	}
	rc := r.checkRun(ctx, b)
	if rc.Problem != "" {
		return nil, fmt.Errorf("%w: request %s: %s", core.ErrUnverified, b.Request.ID, rc.Problem)
	}
	if r.RequireSigned && !rc.Signed {
		return nil, refusef("request %s: the record of run %s is not signed, and the policy requires signed records (require_signed_records)", b.Request.ID, core.ShortRunID(b.Request.Run.ID))
	}
	votes, err := r.votes(ctx, b.Request.ID)
	if err != nil {
		return nil, err
	}
	status := r.Tally(b, votes)
	out := &Export{Request: b.Request.ID, Dir: in.Dir, Withheld: []FileStatus{}, Envelope: EnvelopeFile, Crate: CrateFile}
	for i, st := range status {
		f := b.Request.Files[i]
		if st.Released {
			st.Reasons = r.recheck(ctx, b.Request.ID, f)
			st.Released = len(st.Reasons) == 0
		}
		if st.Released {
			out.Released = append(out.Released, f)
		} else {
			out.Withheld = append(out.Withheld, st)
		}
	}
	if len(out.Released) == 0 {
		return nil, refusef("nothing in request %s may leave: %s", b.Request.ID, withheldText(out.Withheld))
	}
	env, stmt, err := r.statement(ctx, b, votes, out.Released, in)
	if err != nil {
		return nil, err
	}
	crate, err := fiveSafesCrate(b, votes, out.Released, stmt, in)
	if err != nil {
		return nil, err
	}
	if err := r.write(ctx, b.Request.ID, in.Dir, out.Released, env, crate); err != nil {
		return nil, err
	}
	e := Entry{Action: ActionExport, Request: b.Request.ID, Actor: in.Actor, Object: EnvelopeFile, SHA256: sum(env),
		Note: fmt.Sprintf("released %s", strings.Join(names(out.Released), ", "))}
	if err := r.appendLog(ctx, e, in.Signer); err != nil {
		return nil, err
	}
	return out, nil
}

// recheck checks a file once more before it leaves: its snapshot is what
// was voted on, its sensitivity moderate, and the policy's pre-checks as
// they are now pass.
func (r *Release) recheck(ctx context.Context, id string, f File) []string {
	if got, err := r.snapshotSum(ctx, id, f); err != nil || got != f.SHA256 {
		return []string{changed(f, got, err)}
	}
	if f.Sensitivity != core.SensitivityModerate {
		return []string{"its sensitivity is " + f.Sensitivity + ": only moderate files leave"}
	}
	p, _ := r.Spool.RequestPath(id, "files/"+f.SHA256)
	fs, _, err := Precheck(f.Name, f.Size, func() (io.ReadCloser, error) { return os.Open(p) }, r.Rules)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, x := range Refusals(fs) {
		out = append(out, FindingText(x))
	}
	return out
}

func withheldText(ws []FileStatus) string {
	var parts []string
	for _, w := range ws {
		parts = append(parts, w.Name+": "+strings.Join(w.Reasons, ", "))
	}
	return strings.Join(parts, "; ")
}

// statement signs the in-toto Statement of the release.
func (r *Release) statement(ctx context.Context, b *Bundle, votes []CastVote, files []File, in ExportInput) ([]byte, []byte, error) {
	in.Actor.KeyID = in.Signer.KeyID()
	q := b.Request
	p := releasePredicate{
		Request:         requestSummary{ID: q.ID, SHA256: b.SHA256, Created: q.Created, Requester: q.Requester, Note: q.Note},
		Votes:           []voteSummary{},
		Runs:            []RunRef{q.Run},
		ReviewsRequired: r.Rules.ReviewsRequired,
		Policy:          r.Policy,
		ExportedBy:      in.Actor,
		ExportedAt:      stamp(r.now()),
	}
	for _, v := range votes {
		if v.Verified {
			p.Votes = append(p.Votes, voteSummary{File: v.File, SHA256: v.SHA256, Checker: v.Checker, Decision: v.Decision, Files: v.Files, Time: v.Time, Note: v.Note})
		}
	}
	st := releaseStatement{Type: StatementType, PredicateType: ReleaseType, Predicate: p}
	for _, f := range files {
		st.Subject = append(st.Subject, Subject{Name: f.Name, Digest: map[string]string{"sha256": f.SHA256}})
	}
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, nil, err
	}
	env, err := in.Signer.Sign(ctx, PayloadTypeInToto, payload)
	if err != nil {
		return nil, nil, fmt.Errorf("sign the release: %w", err)
	}
	return env, payload, nil
}

// write lays the release out in a new directory: built beside it under a
// temporary name, then renamed, so that a release is whole or absent.
func (r *Release) write(ctx context.Context, id, dir string, files []File, env, crate []byte) error {
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("-o %s: %w: export writes a new directory", dir, core.ErrExists)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dir)), ".runprov-release-")
	if err != nil {
		return fmt.Errorf("write the release: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, f := range files {
		if !filepath.IsLocal(filepath.FromSlash(f.Name)) {
			return fmt.Errorf("file %q: %w: not a path inside the release", f.Name, core.ErrInvalid)
		}
		src, _ := r.Spool.RequestPath(id, "files/"+f.SHA256)
		if err := copyChecked(src, filepath.Join(tmp, filepath.FromSlash(f.Name)), f.SHA256); err != nil {
			return fmt.Errorf("write %s: %w", f.Name, err)
		}
	}
	if err := errors.Join(os.WriteFile(filepath.Join(tmp, EnvelopeFile), append(env, '\n'), 0o644),
		os.WriteFile(filepath.Join(tmp, CrateFile), crate, 0o644)); err != nil {
		return fmt.Errorf("write the release: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// copyChecked copies src to dst and checks that what was copied has sha.
func copyChecked(src, dst, sha string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	h := newHash()
	_, err = io.Copy(io.MultiWriter(out, h), in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := hexSum(h); got != sha {
		return refusef("it changed while it was copied (sha256 %s, voted on %s)", got, sha)
	}
	return nil
}
