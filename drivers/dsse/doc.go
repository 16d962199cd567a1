// Package dsse signs and verifies DSSE envelopes (the in-toto attestation
// envelope) with runprov's keys, on top of go-securesystemslib's dsse
// package. A signature's keyid is the key's runprov id: the hex sha256 of
// its PKIX DER public key.
//
// It does not decide which keys to trust (the site policy does) nor what a
// payload means (the plugins do).
package dsse
