"""The verify cache's key hashes a signed message once per ``bytes`` object (perf, issue #6), never a
mutable buffer by identity: a check of changed bytes is never answered from a remembered success."""

from __future__ import annotations

import pytest

from phoneemu.crypto import keys, signatures
from phoneemu.crypto.hashes import HashAlg
from phoneemu.errors import VerificationError


def test_a_mutated_buffer_is_not_taken_for_the_message_it_was() -> None:
    key = keys.generate_key(keys.KeySpec(kind="ec"))
    data = bytearray(b"a signed config " * 64)
    sig = signatures.sign(key, bytes(data), HashAlg.SHA256)
    old = signatures.set_verify_cache(signatures.VerifyCache())
    try:
        signatures.verify(key.public_key(), sig, data, HashAlg.SHA256)  # type: ignore[arg-type]
        data[0] ^= 1  # the same object, other bytes
        with pytest.raises(VerificationError):
            signatures.verify(key.public_key(), sig, data, HashAlg.SHA256)  # type: ignore[arg-type]
    finally:
        signatures.set_verify_cache(old)


def test_the_same_bytes_object_is_hashed_once_and_equal_bytes_give_the_same_key() -> None:
    key = keys.generate_key(keys.KeySpec(kind="ec")).public_key()
    data = b"x" * 9000
    k1 = signatures.VerifyCache.key(key, b"sig", data, HashAlg.SHA256)
    assert signatures.VerifyCache.key(key, b"sig", bytes(bytearray(data)), HashAlg.SHA256) == k1
    big = b"y" * (signatures._DIGEST_MEMO_MAX + 1)  # hashed each time, not held
    signatures.VerifyCache.key(key, b"sig", big, HashAlg.SHA256)
    assert all(obj is not big for obj, _ in signatures._bytes_digest._items.values())
