package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/runprov/runprov/core"
)

// RunInput is the run whose files are requested, as the analyst's store
// has it.
type RunInput struct {
	Run *core.Run
	// Statement is the run's in-toto statement; Envelope its signed DSSE
	// envelope (nil when the run is unsigned), by a key of SignerKind.
	Statement  []byte
	Envelope   []byte
	SignerID   string
	SignerKind string
	// Open reads an output file where the run left it.
	Open func(f core.FileRecord) (io.ReadCloser, error)
}

// RequestInput is a request to release files of a run.
type RequestInput struct {
	Run   RunInput
	Paths []string // files of the run's outputs; none: every moderate one
	Note  string
	Actor Person
	// Signer is the requester's key; nil for an unsigned request.
	Signer Signer
}

// RequestOutcome is a request written to the spool.
type RequestOutcome struct {
	Request Request
	// Findings are what the pre-checks found for a checker to judge.
	Findings []Finding
}

// NewRequest checks the files and writes a request for them into the
// spool: snapshots, the run's record and the pre-check findings. A file of
// high sensitivity, one a pre-check refuses or one that changed since the
// run is refused (core.ErrReleaseRefused), and nothing is written.
func (r *Release) NewRequest(ctx context.Context, in RequestInput) (*RequestOutcome, error) {
	if err := r.Spool.Ready(ctx); err != nil {
		return nil, err
	}
	run := in.Run.Run
	chosen, err := chooseFiles(run, in.Paths)
	if err != nil {
		return nil, err
	}
	req := Request{Type: RequestType, ID: newID(), Created: stamp(r.now()), Requester: in.Actor, Note: in.Note,
		Run: runRef(in.Run), Rules: r.Rules, Policy: r.Policy}
	if in.Signer != nil {
		req.Requester.KeyID = in.Signer.KeyID()
	}
	var findings, refusals []Finding
	blobs := map[string]func() (io.ReadCloser, error){}
	for _, f := range chosen {
		open := func() (io.ReadCloser, error) { return in.Run.Open(f) }
		fs, table, err := Precheck(f.Path, f.Size, open, r.Rules)
		if err != nil {
			return nil, fmt.Errorf("pre-check %s: %w", f.Path, err)
		}
		refusals = append(refusals, Refusals(fs)...)
		findings = append(findings, fs...)
		req.Files = append(req.Files, File{Name: f.Path, Output: f.Name, SHA256: f.SHA256, Size: f.Size, Sensitivity: f.FileSensitivity(),
			Type: FileType(f.Path), Findings: nonNil(fs), Table: table})
		blobs[f.SHA256] = open
	}
	if len(refusals) > 0 {
		return nil, refusef("%s", findingsText(refusals))
	}
	files, err := r.bundleFiles(ctx, &req, in)
	if err != nil {
		return nil, err
	}
	if err := r.Spool.PutRequest(ctx, req.ID, files, blobs); err != nil {
		var dm *core.DigestMismatchError
		if errors.As(err, &dm) {
			return nil, refusef("a file changed since run %s recorded it (%v): only what the run made may be requested", core.ShortRunID(run.ID), dm)
		}
		return nil, err
	}
	e := Entry{Action: ActionRequest, Request: req.ID, Actor: in.Actor, Object: "requests/" + req.ID + "/request.json", SHA256: sum(files["request.json"]), Note: in.Note}
	if err := r.appendLog(ctx, e, in.Signer); err != nil {
		return nil, err
	}
	return &RequestOutcome{Request: req, Findings: findings}, nil
}

// bundleFiles are the request's files other than the snapshots.
func (r *Release) bundleFiles(ctx context.Context, req *Request, in RequestInput) (map[string][]byte, error) {
	data, err := json.MarshalIndent(req, "", "  ")
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"request.json": data}
	if in.Run.Envelope != nil {
		files["run.dsse.json"] = in.Run.Envelope
	} else {
		files["run.intoto.json"] = in.Run.Statement
	}
	if in.Signer != nil {
		env, err := in.Signer.Sign(ctx, PayloadTypeRequest, data)
		if err != nil {
			return nil, fmt.Errorf("sign the request: %w", err)
		}
		files["request.dsse.json"], files["requester.pub"] = env, in.Signer.PublicPEM()
	}
	return files, nil
}

func runRef(in RunInput) RunRef {
	run := in.Run
	ref := RunRef{ID: run.ID, Repo: run.Repo, Commit: run.Commit, Path: run.Path, Image: run.ImageDigest, Status: string(run.Status)}
	if in.Envelope != nil {
		ref.Record, ref.RecordSHA256, ref.Signed = "run.dsse.json", sum(in.Envelope), true
		ref.SignerKeyID, ref.SignerKind = in.SignerID, in.SignerKind
	} else {
		ref.Record, ref.RecordSHA256 = "run.intoto.json", sum(in.Statement)
	}
	return ref
}

// chooseFiles picks the run's output files that paths name (a path in its
// output directory, or the OUTPUT's container path joined with it), or
// every moderate one when paths is empty. High ones are refused.
func chooseFiles(run *core.Run, paths []string) ([]core.FileRecord, error) {
	var files []core.FileRecord
	for _, f := range run.Outputs {
		if f.SHA256 != "" {
			files = append(files, f)
		}
	}
	if len(paths) == 0 {
		var out []core.FileRecord
		for _, f := range files {
			if f.FileSensitivity() == core.SensitivityModerate {
				out = append(out, f)
			}
		}
		if len(out) == 0 {
			return nil, refusef("run %s has no output of moderate sensitivity: files of high sensitivity never leave; a Runfile marks an output that may be requested with OUTPUT PATH sensitivity=moderate", core.ShortRunID(run.ID))
		}
		return out, unique(out)
	}
	var out []core.FileRecord
	for _, p := range paths {
		f, err := findFile(run, files, p)
		if err != nil {
			return nil, err
		}
		if f.FileSensitivity() != core.SensitivityModerate {
			return nil, refusef("%s: its OUTPUT %s is of high sensitivity, which never leaves; a Runfile marks an output that may be requested with OUTPUT %s sensitivity=moderate", p, f.Name, f.Name)
		}
		out = append(out, f)
	}
	return out, unique(out)
}

func findFile(run *core.Run, files []core.FileRecord, p string) (core.FileRecord, error) {
	var found []core.FileRecord
	for _, f := range files {
		if p == f.Path || strings.TrimPrefix(p, "/") == strings.TrimPrefix(f.Name, "/")+"/"+f.Path {
			found = append(found, f)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		var all []string
		for _, f := range files {
			all = append(all, f.Path)
		}
		return core.FileRecord{}, fmt.Errorf("%s: %w among the output files of run %s (it has: %s)", p, core.ErrNotFound, core.ShortRunID(run.ID), strings.Join(all, ", "))
	}
	return core.FileRecord{}, fmt.Errorf("%s: %w: several outputs have it; name it with its OUTPUT path, like %s/%s", p, core.ErrAmbiguous, found[0].Name, p)
}

// unique refuses two files that would be released under the same name.
func unique(fs []core.FileRecord) error {
	seen := map[string]string{}
	for _, f := range fs {
		if o, dup := seen[f.Path]; dup && o != f.Name {
			return fmt.Errorf("%s: %w: outputs %s and %s both have it; request them one at a time", f.Path, core.ErrAmbiguous, o, f.Name)
		}
		seen[f.Path] = f.Name
	}
	return nil
}

func findingsText(fs []Finding) string {
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(FindingText(f))
	}
	return b.String()
}

// FindingText is one finding in a line: file, rule, where, what.
func FindingText(f Finding) string {
	s := f.File + ": " + f.Rule
	if f.Where != "" {
		s += " at " + f.Where
	}
	return s + ": " + f.Detail
}

func nonNil(fs []Finding) []Finding {
	if fs == nil {
		return []Finding{}
	}
	return fs
}

// snapshotSum re-hashes the snapshot of f in request id.
func (r *Release) snapshotSum(ctx context.Context, id string, f File) (string, error) {
	p, err := r.Spool.RequestPath(id, "files/"+f.SHA256)
	if err != nil {
		return "", err
	}
	return core.FileSHA256(p)
}
