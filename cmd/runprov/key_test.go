package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runprov/runprov/core/coretest"
)

// openssl runs the openssl binary and returns its stdout.
func openssl(t *testing.T, args ...string) []byte {
	t.Helper()
	bin := coretest.RequireBinary(t, "openssl")
	cmd := exec.Command(bin, args...)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// TestKeyGenerateOpenSSL: openssl reads the keys runprov writes, and finds
// in each private key the public key runprov wrote beside it.
func TestKeyGenerateOpenSSL(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store") // never created: keys need no store
	for _, c := range []struct{ typ, pass string }{{"ed25519", ""}, {"ecdsa-p256", ""}, {"ed25519", "s3cret"}} {
		t.Run(c.typ+"/"+c.pass, func(t *testing.T) {
			t.Setenv(keyPassphraseEnv, c.pass)
			prefix := filepath.Join(t.TempDir(), "signer")
			out, _ := mustCLI(t, 0, store, "key", "generate", "--out", prefix, "--type", c.typ)
			id := strings.TrimSpace(out)
			if fi, err := os.Stat(prefix + ".key"); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("%s.key: %v %v, want mode 0600", prefix, fi.Mode(), err)
			}
			pub, _ := os.ReadFile(prefix + ".pub")
			args := []string{"pkey", "-in", prefix + ".key", "-pubout"}
			if c.pass != "" {
				args = append(args, "-passin", "env:"+keyPassphraseEnv)
			}
			if got := openssl(t, args...); string(got) != string(pub) {
				t.Errorf("openssl pkey -pubout of the .key:\n%s\nthe .pub:\n%s", got, pub)
			}
			der := openssl(t, "pkey", "-pubin", "-in", prefix+".pub", "-outform", "DER")
			sum := sha256.Sum256(der)
			if want := hex.EncodeToString(sum[:]); id != want {
				t.Errorf("generate printed id %s, want sha256 of the DER public key %s", id, want)
			}
			for _, f := range []string{prefix + ".key", prefix + ".pub"} {
				if out, _ := mustCLI(t, 0, store, "key", "id", f); strings.TrimSpace(out) != id {
					t.Errorf("key id %s: %s, want %s", f, out, id)
				}
			}
		})
	}
}

// TestKeyIDOpenSSLKeys: keys openssl made (plain and encrypted) load, and
// the private and public file of a pair have the same id.
func TestKeyIDOpenSSLKeys(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	dir := t.TempDir()
	cases := map[string][]string{
		"ed25519":           {"-algorithm", "ed25519"},
		"p256":              {"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"},
		"ed25519-encrypted": {"-algorithm", "ed25519", "-aes-256-cbc", "-pass", "pass:hunter2"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			priv, pub := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".pub.pem")
			openssl(t, append([]string{"genpkey", "-out", priv}, args...)...)
			pubArgs := []string{"pkey", "-in", priv, "-pubout", "-out", pub}
			if strings.HasSuffix(name, "-encrypted") {
				pubArgs = append(pubArgs, "-passin", "pass:hunter2")
				_, errs := mustCLI(t, exitRunprov, store, "key", "id", priv)
				if !strings.Contains(errs, keyPassphraseEnv) {
					t.Errorf("an encrypted key without passphrase: stderr lacks %s:\n%s", keyPassphraseEnv, errs)
				}
				t.Setenv(keyPassphraseEnv, "hunter2")
			}
			openssl(t, pubArgs...)
			privID, _ := mustCLI(t, 0, store, "key", "id", priv)
			pubID, _ := mustCLI(t, 0, store, "key", "id", pub)
			if privID != pubID || len(strings.TrimSpace(privID)) != 64 {
				t.Errorf("key id: private %q, public %q", privID, pubID)
			}
		})
	}
}

func TestKeyCLIRefusals(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	prefix := filepath.Join(t.TempDir(), "k")
	mustCLI(t, 0, store, "key", "generate", "--out", prefix)
	before, _ := os.ReadFile(prefix + ".key")
	if _, errs := mustCLI(t, exitRunprov, store, "key", "generate", "--out", prefix); !strings.Contains(errs, "already exists") {
		t.Errorf("overwrite: stderr %q", errs)
	}
	if after, _ := os.ReadFile(prefix + ".key"); string(after) != string(before) {
		t.Error("an existing key was overwritten")
	}
	mustCLI(t, exitUsage, store, "key", "generate")
	mustCLI(t, exitUsage, store, "key", "generate", "--out", prefix+"2", "--type", "rsa")
	os.WriteFile(prefix+".txt", []byte("not a key"), 0o644)
	mustCLI(t, exitRunprov, store, "key", "id", prefix+".txt")
	mustCLI(t, exitRunprov, store, "key", "id", prefix+".missing")
}
