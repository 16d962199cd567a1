package keys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/runprov/runprov/core"
)

func TestWriteKeyPairRoundTrip(t *testing.T) {
	for _, typ := range []string{Ed25519, ECDSAP256} {
		for _, pass := range []string{"", "correct horse"} {
			if pass != "" && typ != Ed25519 {
				continue // encryption does not depend on the key type; PBKDF2 is slow
			}
			t.Run(typ+"/pass="+pass, func(t *testing.T) {
				prefix := filepath.Join(t.TempDir(), "k")
				kp, err := WriteKeyPair(prefix, typ, []byte(pass))
				if err != nil {
					t.Fatal(err)
				}
				fi, err := os.Stat(kp.PrivatePath)
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Fatalf("private key mode: %v %v, want 0600", fi.Mode(), err)
				}
				priv, err := PublicFromFile(kp.PrivatePath, []byte(pass))
				if err != nil {
					t.Fatal(err)
				}
				pub, err := ReadPublicFile(kp.PublicPath)
				if err != nil {
					t.Fatal(err)
				}
				for name, k := range map[string]any{"private": priv, "public": pub} {
					if id, _ := ID(k); id != kp.ID {
						t.Errorf("id of the %s file: %s, want %s", name, id, kp.ID)
					}
				}
				if readable, err := CheckPrivateFile(kp.PrivatePath); !readable || err != nil {
					t.Errorf("CheckPrivateFile: %v %v", readable, err)
				}
				if pass != "" {
					if _, err := PublicFromFile(kp.PrivatePath, nil); !errors.Is(err, ErrPassphrase) {
						t.Errorf("no passphrase: %v, want ErrPassphrase", err)
					}
					if _, err := PublicFromFile(kp.PrivatePath, []byte("wrong")); !errors.Is(err, ErrPassphrase) {
						t.Errorf("wrong passphrase: %v, want ErrPassphrase", err)
					}
				}
			})
		}
	}
}

func TestWriteKeyPairRefusesOverwrite(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "k")
	os.WriteFile(prefix+".pub", []byte("mine"), 0o644)
	if _, err := WriteKeyPair(prefix, Ed25519, nil); !errors.Is(err, core.ErrExists) {
		t.Fatalf("existing .pub: %v, want ErrExists", err)
	}
	if _, err := os.Stat(prefix + ".key"); err == nil {
		t.Error("a .key was written next to the existing .pub")
	}
	if data, _ := os.ReadFile(prefix + ".pub"); string(data) != "mine" {
		t.Errorf(".pub was changed: %q", data)
	}
}

func TestParseRefusals(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKIXPublicKey(p384.Public())
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"rsa private", pem.EncodeToMemory(&pem.Block{Type: pemPrivate, Bytes: rsaDER}), core.ErrUnsupported},
		{"p384 public", pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: p384DER}), core.ErrUnsupported},
		{"not pem", []byte("hello"), core.ErrInvalid},
		{"certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), core.ErrInvalid},
		{"garbage der", pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: []byte{1, 2}}), core.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Public(c.data, nil); !errors.Is(err, c.want) {
				t.Errorf("got %v, want %v", err, c.want)
			}
		})
	}
	if _, err := Generate("rsa"); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("Generate(rsa): %v, want ErrInvalid", err)
	}
}
