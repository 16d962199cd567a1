#!/usr/bin/python3
"""Verify a DSSE envelope independently of runprov.

Usage: dsse-verify.py ENVELOPE.json PUBLIC_KEY.pem

The pre-authentication encoding is computed here from the DSSE
specification; the signature is checked by securesystemslib (Debian's
python3-securesystemslib), which uses pyca/cryptography. Prints the payload
on stdout and exits 0 when a signature made by the key verifies, 1 when none
does, 2 on bad input.
"""
import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from securesystemslib.signer import Signature, SSlibKey


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def load_key(path: str) -> SSlibKey:
    pem = open(path, "rb").read()
    pub = serialization.load_pem_public_key(pem)
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    keyid = hashlib.sha256(der).hexdigest()
    if isinstance(pub, ed25519.Ed25519PublicKey):
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return SSlibKey(keyid, "ed25519", "ed25519", {"public": raw.hex()})
    if isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == "secp256r1":
        spki = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return SSlibKey(keyid, "ecdsa", "ecdsa-sha2-nistp256", {"public": spki.decode()})
    sys.exit("dsse-verify: unsupported key type")


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    env = json.load(open(sys.argv[1]))
    key = load_key(sys.argv[2])
    payload = base64.b64decode(env["payload"])
    message = pae(env["payloadType"], payload)
    for sig in env.get("signatures", []):
        if sig.get("keyid") not in ("", None, key.keyid):
            continue
        try:
            key.verify_signature(Signature(key.keyid, base64.b64decode(sig["sig"]).hex()), message)
        except Exception as e:  # securesystemslib raises its own error types
            print(f"dsse-verify: signature by {sig.get('keyid')}: {e}", file=sys.stderr)
            continue
        sys.stdout.write(payload.decode())
        return 0
    print("dsse-verify: no signature by this key verifies", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
