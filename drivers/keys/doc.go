// Package keys reads and writes the signing keys of runprov: Ed25519 (the
// default) and ECDSA P-256, private keys as PKCS#8 PEM (optionally
// passphrase-encrypted, PBES2), public keys as PKIX PEM, the formats openssl
// reads and writes. A key's id is the hex sha256 of its PKIX DER public key.
//
// It does not sign or verify anything, and it does not decide which keys
// are trusted: that is the site policy's job.
package keys
