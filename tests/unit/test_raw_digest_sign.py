"""CAPF raw-digest RSA signatures (spec §F.7): either way they are made, the textbook ``m^d mod n``."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from phoneemu.crypto import keys, signatures
from phoneemu.crypto.hashes import HashAlg
from phoneemu.crypto.signatures import sign_raw_digest, verify_raw_digest


@pytest.fixture(params=["openssl", "python-crt"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of signing: OpenSSL without DigestInfo, and the CRT fallback for an older cryptography."""
    if request.param == "python-crt":
        monkeypatch.setattr(signatures, "_NO_DIGEST_INFO", None)
    else:
        assert signatures._NO_DIGEST_INFO is not None  # the installed cryptography has it
    return str(request.param)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    k = keys.generate_key(keys.KeySpec(kind="rsa", bits=1024), unsafe_seed="raw-digest")
    assert isinstance(k, rsa.RSAPrivateKey)
    return k


def _textbook(key: rsa.RSAPrivateKey, data: bytes, hash_name: str) -> bytes:
    n = key.private_numbers()
    k = (key.key_size + 7) // 8
    h = hashlib.new(hash_name, data).digest()
    block = b"\x00\x01" + b"\xff" * (k - 3 - len(h)) + b"\x00" + h
    return pow(int.from_bytes(block, "big"), n.d, n.public_numbers.n).to_bytes(k, "big")


@pytest.mark.parametrize(("alg", "name"), [(HashAlg.SHA1, "sha1"), (HashAlg.SHA512, "sha512")])
def test_signature_is_the_textbook_one(key: rsa.RSAPrivateKey, alg: HashAlg, name: str, path: str) -> None:
    for data in (b"", b"auth data", bytes(range(256)) * 3):
        sig = sign_raw_digest(key, data, alg)
        assert sig == _textbook(key, data, name)
        verify_raw_digest(key.public_key(), sig, data, alg)


def test_a_key_whose_crt_parts_disagree_still_signs_right(key: rsa.RSAPrivateKey,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The CRT result is checked with e before it is used; a wrong dmp1 falls back to m^d mod n."""
    monkeypatch.setattr(signatures, "_NO_DIGEST_INFO", None)
    n = key.private_numbers()
    bad = rsa.RSAPrivateNumbers(p=n.p, q=n.q, d=n.d, dmp1=n.dmp1 ^ 2, dmq1=n.dmq1, iqmp=n.iqmp,
                                public_numbers=n.public_numbers).private_key(unsafe_skip_rsa_key_validation=True)
    assert sign_raw_digest(bad, b"auth data", HashAlg.SHA1) == _textbook(key, b"auth data", "sha1")
