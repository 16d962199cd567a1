package main

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/dsse"
	"github.com/runprov/runprov/drivers/keys"
	"github.com/runprov/runprov/plugins/history"
)

// verifyReport is what verify found; Problems say why it is not verified.
type verifyReport struct {
	Run      string   `json:"run,omitempty"`
	Envelope string   `json:"envelope,omitempty"`
	Verified bool     `json:"verified"`
	KeyID    string   `json:"key_id,omitempty"`   // the key whose signature verified, else the signer's claimed id
	KeyKind  string   `json:"key_kind,omitempty"` // site or personal, as the store recorded it
	Trusted  string   `json:"trusted_key,omitempty"`
	Outputs  int      `json:"outputs_checked,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

func newVerifyCmd(a *app) *cobra.Command {
	var envFile, keyFile, outputs string
	cmd := &cobra.Command{
		Use:   "verify RUN [--key PUB] [--outputs DIR] | verify --envelope FILE --key PUB [--outputs DIR]",
		Short: "Check a signed run record: its signature, the store's record, the output files",
		Long: `Check the signed record of RUN (see runprov export --format intoto --signed):

  - its DSSE signature verifies with a trusted key: --key PUB (a public or
    private key file), else the public key of the site policy's sign_key
    (its .pub beside it when the private key cannot be read); the key that
    signed is reported, but trusted only when given;
  - the store's record of the run still says what was signed: the in-toto
    statement is derived again from the store and compared, and each field
    that differs is named (an output's sha256, the exit code, ...);
  - with --outputs DIR, every output file named in the statement is found in
    DIR, laid out as run --outputs DIR writes it, with the signed sha256.

With --envelope FILE the envelope is checked offline: no store is needed.

Exit status: 0 verified, 1 not verified (the reasons are printed), 125 when
runprov could not check (an unreadable key or envelope, a store error).`,
		Example: `  runprov verify 3f2a1c --key analyst.pub
  runprov export 3f2a1c --format intoto --signed -o run.dsse.json
  runprov verify --envelope run.dsse.json --key site.pub --outputs ./results`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case envFile == "" && len(args) != 1:
				return usagef("verify needs a RUN, or --envelope FILE --key PUB")
			case envFile != "" && len(args) != 0:
				return usagef("give a RUN or --envelope FILE, not both")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := a.loadPolicy(); err != nil {
				return err
			}
			trusted, from, err := a.trustedRecordKey(keyFile)
			if err != nil {
				return err
			}
			var rep *verifyReport
			if envFile != "" {
				rep, err = verifyEnvelopeFile(ctx, envFile, trusted, outputs)
			} else {
				rep, err = verifyStoredRun(ctx, a, args[0], trusted, outputs)
			}
			if err != nil {
				return err
			}
			rep.Trusted = from
			if len(trusted) == 0 {
				rep.Problems = append(rep.Problems, "no trusted key: give the signer's public key with --key PUB")
			}
			rep.Verified = len(rep.Problems) == 0
			return printVerify(a, rep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&envFile, "envelope", "", "check this DSSE envelope `FILE` offline, without a store")
	f.StringVar(&keyFile, "key", "", "trust this public (or private) `KEY` file")
	f.StringVar(&outputs, "outputs", "", "check the output files in `DIR` against the signed sha256s")
	return cmd
}

// trustedRecordKey is the key verify trusts: --key, else the policy's
// sign_key's public key; none when neither is there.
func (a *app) trustedRecordKey(flag string) ([]crypto.PublicKey, string, error) {
	pass := []byte(os.Getenv(keyPassphraseEnv))
	if flag != "" {
		pub, err := keys.PublicFromFile(flag, pass)
		if errors.Is(err, keys.ErrPassphrase) {
			return nil, "", advise(err, adviceVerifyKeyPassphrase, "")
		}
		if err != nil {
			return nil, "", advise(err, adviceVerifyKeyFile, "")
		}
		return []crypto.PublicKey{pub}, flag, nil
	}
	p := a.policy
	if !p.Active() || p.SignKey == "" {
		return nil, "", nil
	}
	pub, err := keys.PublicFromFile(p.SignKey, pass)
	if err == nil {
		return []crypto.PublicKey{pub}, p.SignKey, nil
	}
	pubFile := strings.TrimSuffix(p.SignKey, ".key") + ".pub"
	if pub, perr := keys.ReadPublicFile(pubFile); perr == nil {
		return []crypto.PublicKey{pub}, pubFile, nil
	}
	return nil, "", advise(fmt.Errorf("site policy %s: sign_key: %w", p.Path, err), adviceSiteKeyUnreadable, "")
}

// verifyStoredRun checks the stored signature of run prefix and that the
// store's record still derives the signed statement.
func verifyStoredRun(ctx context.Context, a *app, prefix string, trusted []crypto.PublicKey, outputs string) (*verifyReport, error) {
	rec, err := loadRecord(ctx, a, prefix)
	if err != nil {
		return nil, err
	}
	rep := &verifyReport{Run: rec.ID}
	if rec.Signature == nil {
		rep.Problems = append(rep.Problems, "the run's record is not signed")
		return rep, nil
	}
	rep.KeyID, rep.KeyKind = rec.Signature.KeyID, rec.Signature.KeyKind
	env, err := dsse.Decode(rec.Signature.Envelope)
	if err != nil {
		return nil, fmt.Errorf("run %s: the stored signature: %w", core.ShortRunID(rec.ID), err)
	}
	payload := checkSignature(ctx, env, trusted, rep)
	if payload == nil {
		// Compare what the envelope claims anyway, to say what changed.
		payload, _ = env.DecodeB64Payload()
	}
	unsigned := *rec
	unsigned.Run = history.Signable(rec.Run)
	cur, err := history.InToto(&unsigned, history.ExportOptions{Version: history.SignedVersion(payload)})
	if err != nil {
		return nil, err
	}
	diffs, err := history.DiffStatement(payload, cur)
	if len(diffs) > 0 && rec.Packages != nil {
		// A record signed before its image was inventoried names no
		// packages: compare it without them.
		bare := *rec
		bare.Packages = nil
		if old, oerr := history.InToto(&bare, history.ExportOptions{Version: history.SignedVersion(payload)}); oerr == nil {
			if d2, err2 := history.DiffStatement(payload, old); err2 == nil && len(d2) == 0 {
				diffs, err = nil, nil
			}
		}
	}
	if err != nil {
		rep.Problems = append(rep.Problems, err.Error())
	}
	for _, d := range diffs {
		rep.Problems = append(rep.Problems, "the store's record differs from the signed statement: "+d)
	}
	return rep, checkOutputFiles(ctx, payload, outputs, rep)
}

// verifyEnvelopeFile checks an envelope file on its own.
func verifyEnvelopeFile(ctx context.Context, file string, trusted []crypto.PublicKey, outputs string) (*verifyReport, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	env, err := dsse.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	rep := &verifyReport{Envelope: file}
	payload := checkSignature(ctx, env, trusted, rep)
	if payload == nil {
		return rep, nil // an unverified payload says nothing about the files
	}
	var st history.Statement
	if err := json.Unmarshal(payload, &st); err == nil {
		rep.Run = st.Predicate.RunDetails.Metadata.InvocationID
	}
	return rep, checkOutputFiles(ctx, payload, outputs, rep)
}

// checkSignature verifies env with the trusted keys and returns its
// payload; nil (and a problem in rep) when no trusted key signed it.
func checkSignature(ctx context.Context, env *dsse.Envelope, trusted []crypto.PublicKey, rep *verifyReport) []byte {
	if rep.KeyID == "" && len(env.Signatures) > 0 {
		rep.KeyID = env.Signatures[0].KeyID
	}
	if len(trusted) == 0 {
		return nil
	}
	id, payload, err := dsse.Verify(ctx, env, dsse.PayloadTypeInToto, trusted)
	if err != nil {
		rep.Problems = append(rep.Problems, "signature: "+strings.TrimPrefix(err.Error(), core.ErrUnverified.Error()+": "))
		return nil
	}
	rep.KeyID = id
	return payload
}

// checkOutputFiles compares the files in dir with the statement's subjects.
func checkOutputFiles(ctx context.Context, payload []byte, dir string, rep *verifyReport) error {
	if dir == "" || payload == nil {
		return nil
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("%w: --outputs %s is not a directory", core.ErrInvalid, dir)
	}
	var st history.Statement
	if err := json.Unmarshal(payload, &st); err != nil {
		rep.Problems = append(rep.Problems, "the signed payload is not an in-toto statement: "+err.Error())
		return nil
	}
	bad, err := history.CheckOutputs(ctx, &st, dir)
	if err != nil {
		return err
	}
	for _, s := range st.Subject {
		if _, ok := s.Digest["sha256"]; ok {
			rep.Outputs++
		}
	}
	for _, m := range bad {
		rep.Problems = append(rep.Problems, "output "+m.String())
	}
	return nil
}

func printVerify(a *app, rep *verifyReport) error {
	if a.json {
		if err := printJSON(a.stdout, rep); err != nil {
			return err
		}
	} else {
		what := "run " + rep.Run
		if rep.Envelope != "" {
			what = "envelope " + rep.Envelope
		}
		by := ""
		if rep.KeyID != "" {
			by = ", signed by " + strings.TrimSpace(rep.KeyKind+" key "+rep.KeyID)
		}
		if rep.Verified {
			fmt.Fprintf(a.stdout, "verified: %s%s (trusted: %s)\n", what, by, rep.Trusted)
			if rep.Run != "" && rep.Envelope == "" {
				fmt.Fprintln(a.stdout, "  the store's record matches the signed statement")
			}
			if rep.Outputs > 0 {
				fmt.Fprintf(a.stdout, "  %d output files match their signed sha256\n", rep.Outputs)
			}
		} else {
			fmt.Fprintf(a.stdout, "not verified: %s%s\n", what, by)
			for _, p := range rep.Problems {
				fmt.Fprintf(a.stdout, "  %s\n", p)
			}
		}
	}
	if !rep.Verified {
		return exitStatus{1}
	}
	return nil
}
