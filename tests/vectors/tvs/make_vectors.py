"""Regenerate the TVS vectors of this directory (see README.md). Run from the repo root:

    python tests/vectors/tvs/make_vectors.py

Deterministic: the keys are seeded (phoneemu.crypto.keys unsafe_seed), dates fixed, and RSA PKCS#1 v1.5
signatures are deterministic, so the output is byte-for-byte reproducible.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from phoneemu.crypto.certs import cert_der
from phoneemu.crypto.keys import KeySpec, generate_key

HERE = Path(__file__).resolve().parent

# Cisco shows these prefixes (spec §E.5, CSC-213407).
REQ_PREFIX = (bytes.fromhex("57010300000003e9008f01001801") + b"CP-8861-SEPB000B4BA0AEE"
              + bytes.fromhex("030042") + b"CN=ucm11pu")
RESP_PREFIX = bytes.fromhex("570104f7000003e905be" "07000100" "0205ab308205a73082048fa003020102021324")

# Our completion: a 65-character subject and a 21-character issuer (lengths from §E.4 arithmetic).
SUBJECT = "CN=ucm11pub.example.net;OU=IST;O=Example Ltd;L=Sydney;ST=NSW;C=AU"
ISSUER = "CN=Example-Issuing-CA"
SERIAL = bytes([0x24]) + bytes(range(1, 19))  # 19 bytes, first byte 0x24 as in the dump


def _name(text: str) -> x509.Name:
    oids = {"CN": NameOID.COMMON_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "O": NameOID.ORGANIZATION_NAME,
            "L": NameOID.LOCALITY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME, "C": NameOID.COUNTRY_NAME}
    parts = [p.split("=", 1) for p in text.split(";")]
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in reversed(parts)])


def _cert(pad: int) -> bytes:
    key = generate_key(KeySpec(kind="rsa", bits=2048), unsafe_seed="tvs-vector-subject")
    ca_key = generate_key(KeySpec(kind="rsa", bits=2048), unsafe_seed="tvs-vector-issuer")
    b = (x509.CertificateBuilder()
         .subject_name(_name(SUBJECT)).issuer_name(_name(ISSUER))
         .public_key(key.public_key()).serial_number(int.from_bytes(SERIAL, "big"))
         .not_valid_before(dt.datetime(2017, 1, 1, tzinfo=dt.UTC))
         .not_valid_after(dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
         .add_extension(x509.SubjectAlternativeName([x509.DNSName("ucm11pub.example.net"),
                                                     x509.DNSName("pad" + "x" * pad + ".example.net")]),
                        critical=False)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    return cert_der(b.sign(ca_key, hashes.SHA256()))


def main() -> None:
    for pad in range(1, 2000):
        der = _cert(pad)
        if len(der) == 1451:
            break
    else:
        raise SystemExit("no padding gives a 1451-byte certificate")
    assert der[:16] == RESP_PREFIX[17:33], der[:16].hex()
    dev = b"\x01" + b"CP-8861-SEPB000B4BA0AEE"
    body = (bytes([1]) + len(dev).to_bytes(2, "big") + dev
            + bytes([3]) + (len(SUBJECT) + 1).to_bytes(2, "big") + SUBJECT.encode() + b"\0"
            + bytes([4]) + (len(ISSUER) + 1).to_bytes(2, "big") + ISSUER.encode() + b"\0"
            + bytes([5]) + len(SERIAL).to_bytes(2, "big") + SERIAL)
    req = bytes.fromhex("5701030000000" "3e9") + len(body).to_bytes(2, "big") + body
    rbody = (bytes.fromhex("07000100") + b"\x02" + len(der).to_bytes(2, "big") + der
             + bytes.fromhex("0800020003") + bytes.fromhex("09000400015180"))
    resp = bytes.fromhex("570104f7000003e9") + len(rbody).to_bytes(2, "big") + rbody
    assert len(req) == 153 and req[:50] == REQ_PREFIX, (len(req), req[:50].hex())
    assert len(resp) == 1480 and resp[:33] == RESP_PREFIX, (len(resp), resp[:33].hex())
    (HERE / "query_request.bin").write_bytes(req)
    (HERE / "query_response.bin").write_bytes(resp)
    print("ok", len(req), len(resp))


if __name__ == "__main__":
    main()
