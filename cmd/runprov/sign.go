package main

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/dsse"
	"github.com/runprov/runprov/drivers/keys"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/plugins/history"
)

// recordSigner is the key that signs the run records of this invocation.
type recordSigner struct {
	key  crypto.Signer
	id   string
	kind string // core.SignerSite or core.SignerPersonal
}

// recordSigner picks the key that will sign the run: --sign-key (the
// analyst's), else the policy's sign_key (the site's); nil when there is
// none. It is called before the run starts, so that a run the policy
// requires signed and that cannot be is refused before it runs.
func (a *app) recordSigner(flag string) (*recordSigner, error) {
	if flag != "" {
		s, err := loadSigner(flag, core.SignerPersonal)
		if err != nil {
			return nil, signKeyError(err)
		}
		return s, nil
	}
	p := a.policy
	if !p.Active() {
		return nil, nil
	}
	if p.SignKey == "" {
		if p.RequireSignedRecords {
			return nil, advise(&core.PolicyError{Path: p.Path, Err: errors.New("require_signed_records is true and no key would sign this run")},
				adviceSignedRecordsNoKey, "")
		}
		return nil, nil
	}
	s, err := loadSigner(p.SignKey, core.SignerSite)
	if err == nil {
		return s, nil
	}
	if p.RequireSignedRecords {
		return nil, advise(&core.PolicyError{Path: p.Path, Err: fmt.Errorf("require_signed_records is true and the site key cannot sign this run: %w", err)},
			adviceSignedRecordsSiteKey, "")
	}
	a.log.Warn("the site's sign_key cannot be read: the run will not be signed", "key", p.SignKey, "err", err)
	return nil, nil
}

func loadSigner(path, kind string) (*recordSigner, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	priv, err := keys.ParsePrivate(data, []byte(os.Getenv(keyPassphraseEnv)))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	id, err := keys.ID(priv.Public())
	if err != nil {
		return nil, err
	}
	return &recordSigner{key: priv, id: id, kind: kind}, nil
}

func signKeyError(err error) error {
	if errors.Is(err, keys.ErrPassphrase) {
		return advise(err, adviceKeyPassphrase, "")
	}
	return advise(err, adviceSignKeyFile, "")
}

// signRun signs the stored record of run id: the in-toto statement that
// export --format intoto prints for it, as a DSSE envelope kept with the run.
func (a *app) signRun(ctx context.Context, s *recordSigner, id string) error {
	st := a.store
	r, err := st.Run(ctx, id)
	if err != nil {
		return err
	}
	rec := &history.Record{Run: history.Signable(*r), Packages: recordPackages(ctx, a, st, r.ConfigDigest)}
	stmt, err := history.InToto(rec, history.ExportOptions{Version: version})
	if err != nil {
		return err
	}
	payload, err := history.StatementJSON(stmt)
	if err != nil {
		return err
	}
	env, err := dsse.Sign(ctx, s.key, dsse.PayloadTypeInToto, payload)
	if err != nil {
		return fmt.Errorf("sign run %s: %w", core.ShortRunID(id), err)
	}
	b, err := json.Marshal(env)
	if err != nil {
		return err
	}
	return st.PutRunSignature(ctx, &core.RunSignature{RunID: r.ID, KeyID: s.id, KeyKind: s.kind, SignedAt: time.Now(), Envelope: b})
}

// signFinished signs the finished run when a signer was chosen. A record
// that should have been signed and was not is runprov's failure (125),
// whatever the container's status.
func (a *app) signFinished(ctx context.Context, s *recordSigner, run *core.Run) error {
	if s == nil || !run.Status.Finished() {
		return nil
	}
	// An aborted run is signed too, after Ctrl-C cancelled ctx.
	if err := a.signRun(context.WithoutCancel(ctx), s, run.ID); err != nil {
		return advise(fmt.Errorf("the run finished but its record is not signed: %w", err), adviceRecordUnsigned, "")
	}
	if !a.quiet {
		fmt.Fprintf(a.stderr, "runprov: record signed by %s key %s\n", s.kind, shortKeyID(s.id))
	}
	return nil
}

// slurmUnsigned refuses a signing key for a Slurm run, whose record is
// written on the node and taken in later, unsigned.
func (a *app) slurmUnsigned(flag string) error {
	p := a.policy
	switch {
	case flag != "":
		return usagef("--sign-key: Slurm runs are not signed yet; sign with --executor local")
	case p.Active() && p.RequireSignedRecords:
		return &core.PolicyError{Path: p.Path, Err: errors.New("require_signed_records is true and Slurm runs are not signed yet: run it with --executor local")}
	case p.Active() && p.SignKey != "":
		a.log.Warn("Slurm runs are not signed yet: this run's record will not be signed")
	}
	return nil
}

func shortKeyID(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}

// runSignature returns the signature of run id, nil when it is unsigned (or
// the store predates signatures).
func runSignature(ctx context.Context, a *app, st *sqlite.Store, id string) *core.RunSignature {
	sig, err := st.RunSignature(ctx, id)
	if err != nil {
		if !errors.Is(err, core.ErrNotFound) && !strings.Contains(err.Error(), "no such table") {
			a.log.Warn("cannot read the run's signature", "run", core.ShortRunID(id), "err", err)
		}
		return nil
	}
	return sig
}

// signatureText is show's line on who signed the record.
func signatureText(sig *core.RunSignature) string {
	if sig == nil {
		return "no"
	}
	return fmt.Sprintf("by a %s key, %s, at %s (check: runprov verify %s)", sig.KeyKind, sig.KeyID, timeText(sig.SignedAt), core.ShortRunID(sig.RunID))
}

// signedEnvelope is the stored envelope of rec, for export --signed.
func signedEnvelope(rec *history.Record) (json.RawMessage, error) {
	if rec.Signature == nil {
		return nil, advise(fmt.Errorf("run %s: %w: its record is not signed", core.ShortRunID(rec.ID), core.ErrNotFound), adviceNotSigned, "")
	}
	return json.RawMessage(rec.Signature.Envelope), nil
}
