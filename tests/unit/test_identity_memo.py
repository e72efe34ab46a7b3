"""IdentityMemo: computed once per object, never shared between equal objects, bounded."""

from __future__ import annotations

import datetime as dt
import hashlib

from cryptography.hazmat.primitives import serialization

from phoneemu.crypto import certs, keys, signatures
from phoneemu.crypto._memo import IdentityMemo
from phoneemu.crypto.hashes import HashAlg
from phoneemu.crypto.keys import KeySpec


def test_once_per_object_and_never_for_an_equal_one() -> None:
    calls: list[object] = []

    def compute(obj: list[int]) -> int:
        calls.append(obj)
        return sum(obj)

    memo: IdentityMemo[list[int], int] = IdentityMemo(compute, max_items=3)
    a, b = [1, 2], [1, 2]
    assert memo(a) == 3 and memo(a) == 3 and calls == [a]
    assert memo(b) == 3 and len(calls) == 2 and calls[1] is b  # equal, not the same: computed again
    a.append(4)  # a mutated object keeps its memo: only for immutable objects (see the docstring)
    assert memo(a) == 3
    for i in range(5):
        memo([i])
    assert len(memo) <= 3  # bounded


def test_dn_text_and_spki_digest_match_a_fresh_computation() -> None:
    key = keys.generate_key(KeySpec(kind="rsa", bits=1024))
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    req = certs.CertRequest(subject="CN=memo;OU=phoneemu;O=lab", public_key=key.public_key(), serial=7,
                            not_before=now, not_after=now + dt.timedelta(days=1))
    cert = certs.issue_certificate(req, issuer_key=key)
    first = certs.dn_text(cert.subject)
    assert certs.dn_text(cert.subject) is first
    assert first == ";".join(r.rfc4514_string() for r in reversed(cert.subject.rdns))
    pub = key.public_key()
    spki = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    k1 = signatures.VerifyCache.key(pub, b"sig", b"data", HashAlg.SHA256)
    assert k1[1:33] == hashlib.sha256(spki).digest()
    assert signatures.VerifyCache.key(pub, b"sig", b"data", HashAlg.SHA256) == k1
