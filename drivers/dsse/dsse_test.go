package dsse

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/core/coretest"
	"github.com/runprov/runprov/drivers/keys"
)

const statement = `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"out.csv","digest":{"sha256":"00"}}]}`

func newKey(t *testing.T, typ string) (crypto.Signer, string) {
	t.Helper()
	kp, err := keys.WriteKeyPair(filepath.Join(t.TempDir(), "k"), typ, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(kp.PrivatePath)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := keys.ParsePrivate(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	return priv, kp.PublicPath
}

// TestSignVerify signs with each key type; runprov's Verify and an
// independent implementation (Python, securesystemslib) both accept the
// envelope, and both refuse it once a byte of it changes or under another key.
func TestSignVerify(t *testing.T) {
	// Debian's python3-securesystemslib lives with Debian's interpreter.
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import securesystemslib.signer").Run(); err != nil {
		coretest.Unavailable(t, "needs python3-securesystemslib (make deps installs it)")
	}
	script, _ := filepath.Abs("../../testdata/scripts/dsse-verify.py")
	ctx := context.Background()
	for _, typ := range []string{keys.Ed25519, keys.ECDSAP256} {
		t.Run(typ, func(t *testing.T) {
			priv, pubPath := newKey(t, typ)
			other, otherPub := newKey(t, typ)
			env, err := Sign(ctx, priv, PayloadTypeInToto, []byte(statement))
			if err != nil {
				t.Fatal(err)
			}
			id, _ := keys.ID(priv.Public())
			if len(env.Signatures) != 1 || env.Signatures[0].KeyID != id {
				t.Fatalf("signatures %+v, want one by %s", env.Signatures, id)
			}
			got, payload, err := Verify(ctx, env, PayloadTypeInToto, []crypto.PublicKey{other.Public(), priv.Public()})
			if err != nil || got != id || string(payload) != statement {
				t.Fatalf("Verify: %s %q %v", got, payload, err)
			}
			if _, _, err := Verify(ctx, env, PayloadTypeInToto, []crypto.PublicKey{other.Public()}); !errors.Is(err, core.ErrUnverified) {
				t.Errorf("Verify with an untrusted key: %v", err)
			}
			if _, _, err := Verify(ctx, env, "application/json", []crypto.PublicKey{priv.Public()}); !errors.Is(err, core.ErrUnverified) {
				t.Errorf("Verify of another payload type: %v", err)
			}
			independent := func(e *Envelope, pub string) (string, error) {
				f := filepath.Join(t.TempDir(), "env.json")
				data, _ := json.Marshal(e)
				if err := os.WriteFile(f, data, 0o644); err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command(py, script, f, pub).Output()
				return string(out), err
			}
			if out, err := independent(env, pubPath); err != nil || out != statement {
				t.Fatalf("independent verification: %v, payload %q", err, out)
			}
			if _, err := independent(env, otherPub); err == nil {
				t.Errorf("independent verification accepted another key")
			}
			tampered := *env
			tampered.Payload = base64.StdEncoding.EncodeToString([]byte(statement + " "))
			if _, err := independent(&tampered, pubPath); err == nil {
				t.Errorf("independent verification accepted a changed payload")
			}
			if _, _, err := Verify(ctx, &tampered, PayloadTypeInToto, []crypto.PublicKey{priv.Public()}); !errors.Is(err, core.ErrUnverified) {
				t.Errorf("Verify of a changed payload: %v", err)
			}
			raw, _ := json.Marshal(env)
			back, err := Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := Verify(ctx, back, PayloadTypeInToto, []crypto.PublicKey{priv.Public()}); err != nil {
				t.Errorf("Verify after a JSON round trip: %v", err)
			}
		})
	}
}
