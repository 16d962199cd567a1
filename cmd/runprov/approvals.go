package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/dsse"
	imagedrv "github.com/runprov/runprov/drivers/image"
	"github.com/runprov/runprov/drivers/keys"
	"github.com/runprov/runprov/drivers/sqlite"
)

// signedApprovalsRequired: a policy that names approver_keys admits only
// images with a signed approval by one of them, unless it turns
// require_approval off.
func signedApprovalsRequired(p *core.Policy) bool {
	if !p.Active() || len(p.ApproverKeys) == 0 {
		return false
	}
	return p.RequireApproval == nil || *p.RequireApproval
}

// approverKeys reads the public keys of the policy's approver_keys.
func approverKeys(p *core.Policy) ([]crypto.PublicKey, error) {
	var out []crypto.PublicKey
	for _, k := range p.ApproverKeys {
		pub, err := keys.ReadPublicFile(k.Path)
		if err != nil {
			return nil, &core.PolicyError{Path: p.Path, Err: fmt.Errorf("approver key: %w", err)}
		}
		out = append(out, pub)
	}
	return out, nil
}

// checkSigned admits img only with a verified, unexpired and unrevoked
// signed approval of its index or manifest; it names that approval in img.
func (s policyImages) checkSigned(ctx context.Context, img *core.ResolvedImage) error {
	digests := []string{img.ManifestDigest}
	if img.IndexDigest != "" {
		digests = append(digests, img.IndexDigest)
	}
	as, err := signedApprovals(ctx, s.approvals, s.policy, digests)
	if err != nil {
		return err
	}
	chosen, refused := core.ChooseApproval(as, img.Approved, time.Now())
	if refused != nil {
		refused.Digest, refused.Policy = digests[len(digests)-1], s.policy.Path
		return refused
	}
	img.Signed = &core.RunApproval{KeyID: chosen.KeyID, SHA256: chosen.SHA256}
	return nil
}

// signedApprovals reads the signed approvals and revocations of digests kept
// in the store and in the policy's approvals_dir, each verified against the
// approver keys. An envelope that cannot be read is listed with its Problem.
func signedApprovals(ctx context.Context, st *sqlite.Store, p *core.Policy, digests []string) ([]core.SignedApproval, error) {
	trusted, err := approverKeys(p)
	if err != nil {
		return nil, err
	}
	var out []core.SignedApproval
	add := func(data []byte, source string) {
		a, err := dsse.ReadApproval(ctx, data, trusted)
		if err != nil {
			out = append(out, core.SignedApproval{Source: source, Problem: err.Error()})
			return
		}
		if slices.Contains(digests, a.Digest) {
			a.Source = source
			out = append(out, *a)
		}
	}
	envs, err := st.SignedApprovalEnvelopes(ctx, digests...)
	if err != nil {
		return nil, err
	}
	for _, e := range envs {
		add(e, "store")
	}
	if p.ApprovalsDir == "" {
		return out, nil
	}
	files, err := approvalFiles(p.ApprovalsDir)
	if err != nil {
		return nil, &core.PolicyError{Path: p.Path, Err: fmt.Errorf("approvals_dir: %w", err)}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			out = append(out, core.SignedApproval{Source: f, Problem: err.Error()})
			continue
		}
		for _, env := range envelopesIn(f, data) {
			add(env, f)
		}
	}
	return out, nil
}

// approvalFiles lists the envelope files of an approvals directory: *.json
// (one envelope) and *.intoto.jsonl (one envelope a line).
func approvalFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && (strings.HasSuffix(n, ".json") || strings.HasSuffix(n, ".intoto.jsonl")) {
			out = append(out, filepath.Join(dir, n))
		}
	}
	return out, nil
}

func envelopesIn(name string, data []byte) [][]byte {
	if !strings.HasSuffix(name, ".jsonl") {
		// Trimmed, so that the file approve -o wrote sums as the stored envelope.
		return [][]byte{bytes.TrimSpace(data)}
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			out = append(out, bytes.Clone(line))
		}
	}
	return out
}

// signApproval signs an approval (or revocation) of the stored image digest
// with the private key file keyPath, keeps it in the store and writes it to
// out when given.
func (a *app) signApproval(ctx context.Context, s *imagedrv.Store, digest string, revoke bool, keyPath, note, expires, out string) error {
	d, err := s.Lookup(ctx, digest)
	if err != nil {
		return err
	}
	rec, err := s.Record(ctx, d)
	if err != nil {
		return err
	}
	signer, err := loadSigner(keyPath, core.SignerPersonal)
	if err != nil {
		return signKeyError(err)
	}
	sa := &core.SignedApproval{Digest: d, Revoke: revoke, Note: note, At: time.Now().UTC().Truncate(time.Second)}
	if expires != "" {
		if sa.Expires, err = parseExpiry(expires); err != nil {
			return err
		}
	}
	name := rec.Ref
	if name == "" {
		name = d
	}
	if err := dsse.SignApproval(ctx, signer.key, name, sa); err != nil {
		return err
	}
	// The event's kind is approve or revoke (image_events allows no other);
	// its note says it is signed, and by which envelope.
	kind := core.ImageEventApprove
	if revoke {
		kind = core.ImageEventRevoke
	}
	ev := core.NewImageEvent(kind, fmt.Sprintf("signed by key %s, envelope sha256:%s: %s", sa.KeyID, sa.SHA256, note))
	if err := a.store.PutSignedApproval(ctx, d, kind, sa.KeyID, sa.SHA256, sa.Envelope, ev); err != nil {
		return err
	}
	if out != "" {
		if err := os.WriteFile(out, append(sa.Envelope, '\n'), 0o644); err != nil {
			return fmt.Errorf("write approval envelope: %w", err)
		}
	}
	if a.json {
		return printJSON(a.stdout, sa)
	}
	fmt.Fprintf(a.stderr, "signed %s of %s with key %s (envelope sha256:%s)\n", kind, d, sa.KeyID, sa.SHA256)
	return nil
}

func parseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("--expires %q: give a date YYYY-MM-DD or an RFC 3339 time", s)
	}
	return t.UTC(), nil
}
