#!/usr/bin/python3
"""Mint a JWT (RFC 7519, JWS compact serialization) for trying ringway's --jwt-* options.

HS256/384/512 are signed with Python's hmac module; RS*, PS*, ES256/384 and EdDSA with the
`openssl` command line tool (OpenSSL 3). No third-party Python packages are needed.

Examples:
  # an HMAC secret and a token for it (secret files: the bytes of the file, trailing newline dropped)
  head -c 32 /dev/urandom | base64 > hs.secret
  ringway --jwt-key k1=secret:hs.secret --auth jwt ...
  tools/mint_token.py --alg HS256 --key hs.secret --kid k1 --sub alice --claim scope="orders:read"

  # a key pair (writes ec.pem and ec.pub.pem), then a token signed with the private key
  tools/mint_token.py --genkey ES256 --out ec.pem
  ringway --jwt-key k2=pem:ec.pub.pem ...
  tools/mint_token.py --alg ES256 --key ec.pem --kid k2 --sub bob --aud api

  curl -H "Authorization: Bearer $(tools/mint_token.py ...)" http://127.0.0.1:8080/...

Claims: --claim NAME=VALUE takes VALUE as JSON when it parses as JSON (numbers, true, arrays,
objects, "quoted strings") and as a plain string otherwise. exp defaults to now + 300 s; iat is
now. --exp/--nbf/--iat take seconds relative to now (negative for the past).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time

HASHES = {"256": "sha256", "384": "sha384", "512": "sha512"}
EC_SIZES = {"ES256": 32, "ES384": 48}
GENKEY = {
    "RS256": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    "PS256": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    "ES256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "ES384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    "EdDSA": ["-algorithm", "ed25519"],
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _openssl(args: list[str], data: bytes) -> bytes:
    # pkeyutl -rawin (Ed25519, one-shot) needs a regular file to learn the input size.
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        r = subprocess.run(["openssl", *args, "-in", f.name], capture_output=True, timeout=30,
                           stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise SystemExit("openssl failed: " + r.stderr.decode(errors="replace").strip())
    return r.stdout


def _der_to_raw(der: bytes, size: int) -> bytes:
    """ECDSA-Sig-Value (SEQUENCE { r INTEGER, s INTEGER }) -> r||s, each `size` bytes (RFC 7518 3.4)."""
    def length(buf: bytes, i: int) -> tuple[int, int]:
        n = buf[i]
        if n < 0x80:
            return n, i + 1
        k = n & 0x7F
        return int.from_bytes(buf[i + 1:i + 1 + k], "big"), i + 1 + k

    if der[0] != 0x30:
        raise SystemExit("unexpected ECDSA signature encoding")
    _, i = length(der, 1)
    out = b""
    for _ in range(2):
        if der[i] != 0x02:
            raise SystemExit("unexpected ECDSA signature encoding")
        n, i = length(der, i + 1)
        out += int.from_bytes(der[i:i + n], "big").to_bytes(size, "big")
        i += n
    return out


def sign(alg: str, key_path: str, signing_input: bytes) -> bytes:
    if alg.startswith("HS"):
        with open(key_path, "rb") as f:
            secret = f.read().rstrip(b"\r\n")  # same rule as ringway's secret:FILE
        return hmac.new(secret, signing_input, HASHES[alg[2:]]).digest()
    if alg.startswith("RS"):
        return _openssl(["pkeyutl", "-sign", "-inkey", key_path, "-rawin", "-digest", HASHES[alg[2:]]],
                        signing_input)
    if alg.startswith("PS"):
        # RFC 7518 3.5: MGF1 with the same hash, salt as long as the hash output.
        return _openssl(["pkeyutl", "-sign", "-inkey", key_path, "-rawin", "-digest", HASHES[alg[2:]],
                         "-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:digest"],
                        signing_input)
    if alg in EC_SIZES:
        der = _openssl(["pkeyutl", "-sign", "-inkey", key_path, "-rawin", "-digest", HASHES[alg[2:]]],
                       signing_input)
        return _der_to_raw(der, EC_SIZES[alg])
    if alg == "EdDSA":
        return _openssl(["pkeyutl", "-sign", "-inkey", key_path, "-rawin"], signing_input)
    raise SystemExit(f"unsupported alg {alg!r}")


def mint(alg: str, key_path: str | None, claims: dict, kid: str | None = None,
         extra_header: dict | None = None) -> str:
    """The token as text. alg 'none' (for negative tests) yields an empty signature."""
    header = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    header.update(extra_header or {})
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode())).encode("ascii")
    sig = b"" if alg.lower() == "none" else sign(alg, key_path, signing_input)
    return signing_input.decode("ascii") + "." + b64url(sig)


def genkey(alg: str, out: str) -> str:
    """Writes a private key to `out` and its public key (SubjectPublicKeyInfo PEM) next to it."""
    if alg not in GENKEY:
        raise SystemExit(f"--genkey: one of {', '.join(GENKEY)} (HS*: any file of >= 32 random bytes)")
    subprocess.run(["openssl", "genpkey", *GENKEY[alg], "-out", out], check=True, capture_output=True,
                   timeout=60, stdin=subprocess.DEVNULL)
    os.chmod(out, 0o600)
    pub = (out[:-4] if out.endswith(".pem") else out) + ".pub.pem"
    subprocess.run(["openssl", "pkey", "-in", out, "-pubout", "-out", pub], check=True,
                   capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    return pub


def _value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alg", default="HS256",
                   help="HS256|HS384|HS512|RS256|RS384|RS512|PS256|PS384|PS512|ES256|ES384|EdDSA "
                        "(default HS256)")
    p.add_argument("--key", help="HMAC secret file (HS*) or private key PEM (others)")
    p.add_argument("--kid", help="key id put in the header (picks the key in ringway)")
    p.add_argument("--sub", help="subject claim")
    p.add_argument("--iss", help="issuer claim")
    p.add_argument("--aud", action="append", help="audience; repeat for an array")
    p.add_argument("--scope", help="space-separated scopes (the 'scope' claim)")
    p.add_argument("--claim", action="append", default=[], metavar="NAME=VALUE",
                   help="any claim; VALUE is JSON if it parses, else a string; repeatable")
    p.add_argument("--exp", type=int, default=300, help="exp relative to now in seconds (default 300)")
    p.add_argument("--no-exp", action="store_true", help="leave exp out")
    p.add_argument("--nbf", type=int, help="nbf relative to now in seconds")
    p.add_argument("--iat", type=int, default=0, help="iat relative to now in seconds (default 0)")
    p.add_argument("--genkey", metavar="ALG", help="instead of a token: write a key pair for ALG")
    p.add_argument("--out", help="with --genkey: private key file (public key: NAME.pub.pem)")
    a = p.parse_args(argv)

    if a.genkey:
        if not a.out:
            p.error("--genkey needs --out FILE")
        print(genkey(a.genkey, a.out))
        return 0
    if a.alg.lower() != "none" and not a.key:
        p.error("--key is required")
    now = int(time.time())
    claims: dict = {"iat": now + a.iat}
    if not a.no_exp:
        claims["exp"] = now + a.exp
    if a.nbf is not None:
        claims["nbf"] = now + a.nbf
    if a.sub is not None:
        claims["sub"] = a.sub
    if a.iss is not None:
        claims["iss"] = a.iss
    if a.aud:
        claims["aud"] = a.aud[0] if len(a.aud) == 1 else a.aud
    if a.scope is not None:
        claims["scope"] = a.scope
    for c in a.claim:
        name, sep, value = c.partition("=")
        if not sep or not name:
            p.error(f"--claim expects NAME=VALUE, got {c!r}")
        claims[name] = _value(value)
    print(mint(a.alg, a.key, claims, a.kid))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
