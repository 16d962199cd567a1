package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/drivers/keys"
)

// keyPassphraseEnv holds the passphrase that encrypts (key generate) and
// decrypts (key id, signing) private keys; never a flag, so that it stays
// out of shell history and ps.
const keyPassphraseEnv = "RUNPROV_KEY_PASSPHRASE"

func newKeyCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Make signing keys and print their ids",
		Long: `Signing keys are PEM files openssl reads and writes: a private key in PKCS#8
(PREFIX.key, mode 0600) and its public key in PKIX (PREFIX.pub). Ed25519 and
ECDSA P-256 are accepted. A key's id is the hex sha256 of its DER public key.`,
	}
	cmd.AddCommand(newKeyGenerateCmd(a), newKeyIDCmd(a))
	return cmd
}

func newKeyGenerateCmd(a *app) *cobra.Command {
	var prefix, typ string
	cmd := &cobra.Command{
		Use:   "generate --out PREFIX",
		Short: "Write a new key pair to PREFIX.key and PREFIX.pub",
		Long: `Write a new private key to PREFIX.key (PKCS#8 PEM, mode 0600) and its public
key to PREFIX.pub (PKIX PEM); print the key id. Existing files are never
overwritten. When $RUNPROV_KEY_PASSPHRASE is set, the private key is encrypted
with it (PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC, as openssl pkcs8 -v2 aes256).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if prefix == "" {
				return usagef("key generate needs --out PREFIX")
			}
			if typ != keys.Ed25519 && typ != keys.ECDSAP256 {
				return usagef("--type %q: want %s or %s", typ, keys.Ed25519, keys.ECDSAP256)
			}
			kp, err := keys.WriteKeyPair(prefix, typ, []byte(os.Getenv(keyPassphraseEnv)))
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, map[string]string{"id": kp.ID, "type": typ, "private_key": kp.PrivatePath, "public_key": kp.PublicPath})
			}
			fmt.Fprintln(a.stdout, kp.ID)
			if !a.quiet {
				fmt.Fprintf(a.stderr, "runprov: wrote %s (private, keep it secret) and %s (public)\n", kp.PrivatePath, kp.PublicPath)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&prefix, "out", "", "write `PREFIX`.key and PREFIX.pub")
	cmd.Flags().StringVar(&typ, "type", keys.Ed25519, "key type: ed25519 or ecdsa-p256")
	return cmd
}

func newKeyIDCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "id FILE",
		Short: "Print the id of a private or public key file",
		Long: `Print the id of the key in FILE, a private (PKCS#8 or SEC1 EC, decrypted with
$RUNPROV_KEY_PASSPHRASE when encrypted) or public (PKIX) PEM key: the hex
sha256 of its DER public key, the same for both files of a pair.`,
		Args: exactArgs("key id", "which key file?"),
		RunE: func(cmd *cobra.Command, args []string) error {
			pub, err := keys.PublicFromFile(args[0], []byte(os.Getenv(keyPassphraseEnv)))
			if errors.Is(err, keys.ErrPassphrase) {
				return advise(err, adviceKeyIDPassphrase, "")
			}
			if err != nil {
				return err
			}
			id, err := keys.ID(pub)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, map[string]string{"id": id, "file": args[0]})
			}
			fmt.Fprintln(a.stdout, id)
			return nil
		},
	}
}
