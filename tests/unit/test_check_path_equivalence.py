"""The fuzz check path's speed-ups give the same results as the plain definitions (issue #7).

* ``cipher.aes_cbc_decrypt`` (CBC built on a reused AES-ECB context) equals cryptography's own
  CBC decryption for random keys (128/192/256 bits), IVs and lengths, and keeps its size checks.
* A parsed header is marked ``_layout_ok`` (its layout names exactly its fields), so building skips
  ``_layout_matches``: that check agrees on the headers of fuzz mutants of every format, and the
  build is the same as with the check done.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.crypto import cipher
from phoneemu.errors import DecodeError, DecryptionError
from phoneemu.formats import header
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.engine import input_for
from phoneemu.fuzz.mutators import Mutator


def _reference_cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return dec.update(ciphertext) + dec.finalize()


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from((16, 24, 32)).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
       iv=st.binary(min_size=16, max_size=16), blocks=st.integers(min_value=0, max_value=40),
       data=st.data())
def test_aes_cbc_decrypt_matches_cryptography_cbc(key: bytes, iv: bytes, blocks: int,
                                                  data: st.DataObject) -> None:
    ciphertext = data.draw(st.binary(min_size=16 * blocks, max_size=16 * blocks))
    assert cipher.aes_cbc_decrypt(key, iv, ciphertext) == _reference_cbc_decrypt(key, iv, ciphertext)
    # The reused context carries nothing over: the same call again, and the encryption inverts it.
    assert cipher.aes_cbc_decrypt(key, iv, ciphertext) == _reference_cbc_decrypt(key, iv, ciphertext)
    assert cipher.aes_cbc_decrypt(key, iv, cipher.aes_cbc_encrypt(key, iv, ciphertext)) == ciphertext


def test_aes_cbc_decrypt_many_keys_bounded_cache() -> None:
    for i in range(3 * cipher._ECB_MAX_KEYS):
        key, iv = bytes([i % 256]) * 16, bytes([(7 * i) % 256]) * 16
        ct = bytes(range(48))
        assert cipher.aes_cbc_decrypt(key, iv, ct) == _reference_cbc_decrypt(key, iv, ct)
    assert len(cipher._ECB.by_key) <= cipher._ECB_MAX_KEYS


@pytest.mark.parametrize(("key", "iv", "ct", "message"), [
    (bytes(15), bytes(16), bytes(16), "bad AES key/IV size (15/16 bytes)"),
    (bytes(64), bytes(16), bytes(16), "bad AES key/IV size (64/16 bytes)"),
    (bytes(16), bytes(8), bytes(16), "bad AES key/IV size (16/8 bytes)"),
    (bytes(16), bytes(16), bytes(17), "ciphertext of 17 bytes is not a multiple of 16"),
])
def test_aes_cbc_decrypt_size_errors(key: bytes, iv: bytes, ct: bytes, message: str) -> None:
    with pytest.raises(DecryptionError) as info:
        cipher.aes_cbc_decrypt(key, iv, ct)
    assert str(info.value) == message


@pytest.mark.parametrize("fmt", ["itl", "ctl", "sgn", "enc"])
def test_parsed_layout_always_matches(fmt: str) -> None:
    mutator = Mutator(build_corpus(fmt))
    parsed = 0
    for i in range(400):
        data = input_for(mutator, 7, i).data
        try:
            h = header.parse_header(data, fmt=fmt).header
        except DecodeError:
            continue
        parsed += 1
        assert h.__dict__.get("_layout_ok") is True
        assert h.layout is not None and header._layout_matches(h, h.layout)
        unmarked = object.__new__(header.SignedHeader)  # the same header without the mark
        unmarked.__dict__.update({k: v for k, v in h.__dict__.items() if not k.startswith("_")})
        assert header._build(unmarked) == header._build(h)
    assert parsed > 50
