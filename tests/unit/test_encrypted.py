"""Encrypted configs ``.enc.sgn`` (spec §C.3 PKI method, §C.5 our symmetric convention)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import replace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from phoneemu.crypto.keys import KeySpec, PrivateKey, generate_key
from phoneemu.errors import (
    DecodeError,
    DecryptionError,
    EncodeError,
    SizeLimitError,
    VerificationError,
    VerifyReason,
)
from phoneemu.formats import encrypted as e
from phoneemu.formats.header import EncryptionInfo, FileSigner, parse_header, sign_file, sign_header
from tests.signer_helpers import file_signer, self_signed

NAME = "SEP001122AABBCC.cnf.xml.enc.sgn"
XML = b'<?xml version="1.0" encoding="UTF-8"?>\n<device><fullConfig>true</fullConfig></device>\n'


def identity(name: str, spec: str = "rsa1024", serial: int = 4242) -> tuple[PrivateKey, x509.Certificate]:
    return self_signed(f"CN={name};OU=Lab;O=phoneemu", seed=f"test-encrypted-{name}-{spec}", serial=serial,
                       spec=spec)


def tftp() -> FileSigner:
    return file_signer(identity("tftp"))


def rand_fn(seed: int = 1) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


def pki_file(plaintext: bytes = XML, *, hash_alg: int = 1, phone: str = "phone") -> bytes:
    _, cert = identity(phone, "rsa2048")
    return e.build_pki(plaintext=plaintext, filename=NAME, signer=tftp(), recipient_cert=cert,
                       timestamp=1_700_000_000, hash_alg=hash_alg, rand=rand_fn())


KEY128 = bytes(range(16))
KEY256 = bytes(range(100, 132))


def sym_file(plaintext: bytes = XML, *, key: bytes = KEY128, hash_alg: int = 1) -> bytes:
    return e.build_symmetric(plaintext=plaintext, filename=NAME, signer=tftp(), key=key,
                             timestamp=1_700_000_000, hash_alg=hash_alg, rand=rand_fn())


def resign(data: bytes, *, body: bytes | None = None, changes: dict[str, int] | None = None,
           **enc_changes: bytes) -> bytes:
    """Re-sign ``data`` with tftp() after changing encryption fields and/or the body (fuzzer style)."""
    ph = parse_header(data, fmt="enc.sgn")
    assert ph.header.encryption is not None
    enc = replace(ph.header.encryption, **(changes or {}), **enc_changes)  # type: ignore[arg-type]
    h = replace(ph.header, encryption=enc)
    return sign_header(h, data[ph.body_offset:] if body is None else body, tftp())


# --------------------------------------------------------------------------- PKI method
@pytest.mark.parametrize("hash_alg", [1, 2, 3])
def test_pki_round_trip(hash_alg: int) -> None:
    data = pki_file(hash_alg=hash_alg)
    ef = e.parse(data)
    assert ef.raw == data
    assert ef.method == "pki"
    e.verify(ef, identity("tftp")[1])
    e.verify(ef, identity("tftp")[0].public_key())
    assert e.decrypt_pki(ef, identity("phone", "rsa2048")[0]) == XML


def test_pki_layout_matches_spec_c3() -> None:
    data = pki_file(hash_alg=3)
    ef = e.parse(data)
    h = ef.header
    enc = ef.encryption
    assert h.version == (2, 0)
    assert h.filename == NAME
    assert h.hash_alg == 3
    assert enc.mode == 0 and enc.key_info_unknown == 0 and enc.key_algorithm == 1
    assert enc.hash_alg == 3
    assert enc.plaintext_hash == hashlib.sha512(XML).digest()
    assert enc.wrapped_key is not None and len(enc.wrapped_key) == 256
    assert enc.key_size == 2048  # 8 x wrapped key length, the RSA size (spec §C.3)
    assert enc.padding == 16 - len(XML) % 16
    assert enc.iv is not None and len(enc.iv) == 16
    assert len(ef.ciphertext) == len(XML) + enc.padding
    assert data[h.header_length:] == ef.ciphertext
    # Independent check with the raw primitives: RSA PKCS#1 v1.5 unwrap, AES-128-CBC, 0x0D padding.
    priv = identity("phone", "rsa2048")[0]
    assert isinstance(priv, rsa.RSAPrivateKey)
    k = priv.decrypt(enc.wrapped_key, asym_padding.PKCS1v15())
    assert len(k) == 16
    dec = Cipher(algorithms.AES(k), modes.CBC(enc.iv)).decryptor()
    padded = dec.update(ef.ciphertext) + dec.finalize()
    assert padded == XML + b"\x0d" * enc.padding
    # The key and IV come from the caller's rand, in that order.
    rng = random.Random(1)
    assert k == rng.randbytes(16) and enc.iv == rng.randbytes(16)


@pytest.mark.parametrize(("length", "p"), [(0, 16), (1, 15), (15, 1), (16, 16), (17, 15), (32, 16)])
def test_padding_count_is_1_to_16_never_0(length: int, p: int) -> None:
    padded, count = e.pad(b"a" * length)
    assert count == p
    assert padded == b"a" * length + b"\x0d" * p
    assert e.unpad(padded, count) == b"a" * length
    ef = e.parse(sym_file(b"a" * length))
    assert ef.encryption.padding == p
    assert e.decrypt_symmetric(ef, KEY128) == b"a" * length


def test_plaintext_ending_in_0x0d_survives() -> None:
    text = b"line\r\n\r" * 5
    assert e.decrypt_symmetric(e.parse(sym_file(text)), KEY128) == text


def test_unpad_checks_pad_bytes_and_count() -> None:
    with pytest.raises(DecryptionError, match="0x0D"):
        e.unpad(b"a" * 15 + b"\x01", 1)
    for count in (0, 17):
        with pytest.raises(DecryptionError):
            e.unpad(b"\x0d" * 32, count)
    with pytest.raises(DecryptionError):
        e.unpad(b"\x0d" * 4, 5)


def test_pki_wrong_private_key() -> None:
    ef = e.parse(pki_file())
    other = generate_key(KeySpec.parse("rsa2048"))  # unseeded: fast, and any wrong key must fail
    with pytest.raises(DecryptionError) as info:
        e.decrypt_pki(ef, other)
    assert info.value.reason is VerifyReason.DECRYPT_FAILED
    assert info.value.fmt == "enc.sgn"
    with pytest.raises(DecryptionError):  # a smaller key cannot even take the wrapped bytes
        e.decrypt_pki(ef, identity("small")[0])


def test_pki_ec_keys_are_unsupported() -> None:
    ec_key, ec_cert = identity("ec-phone", "ec-p256")
    with pytest.raises(DecryptionError) as info:
        e.build_pki(plaintext=XML, filename=NAME, signer=tftp(), recipient_cert=ec_cert, timestamp=1,
                    rand=rand_fn())
    assert info.value.reason is VerifyReason.UNSUPPORTED_KEY
    assert "EC" in str(info.value)
    with pytest.raises(DecryptionError) as info:
        e.decrypt_pki(e.parse(pki_file()), ec_key)
    assert info.value.reason is VerifyReason.UNSUPPORTED_KEY


def test_pki_hash_mismatch_after_resigning() -> None:
    data = pki_file()
    ef = e.parse(data)
    assert ef.encryption.plaintext_hash is not None
    bad = resign(data, plaintext_hash=bytes(20))
    ef2 = e.parse(bad)
    e.verify(ef2, identity("tftp")[1])  # the signature is fine, the content is not
    with pytest.raises(DecryptionError) as info:
        e.decrypt_pki(ef2, identity("phone", "rsa2048")[0])
    assert info.value.reason is VerifyReason.HASH_MISMATCH
    assert info.value.tag == 27


def test_pki_tampered_ciphertext_resigned_never_accepted() -> None:
    data = pki_file(XML * 3)
    ef = e.parse(data)
    for i in range(0, len(ef.ciphertext), 7):
        body = bytearray(ef.ciphertext)
        body[i] ^= 0x40
        bad = e.parse(resign(data, body=bytes(body)))
        with pytest.raises(DecryptionError):
            e.decrypt_pki(bad, identity("phone", "rsa2048")[0])


@pytest.mark.parametrize(("changes", "reason", "tag"), [
    ({"hash_alg": 9}, VerifyReason.UNSUPPORTED_HASH, 26),
    ({"key_algorithm": 2}, VerifyReason.UNSUPPORTED_KEY, 24),
    ({"key_size": 1024}, VerifyReason.DECRYPT_FAILED, 23),
    ({"padding": 16}, VerifyReason.DECRYPT_FAILED, None),  # real pad is shorter: plaintext bytes not 0x0D
    ({"padding": 3}, VerifyReason.HASH_MISMATCH, 27),  # pad bytes look fine, the hash catches it
])
def test_pki_bad_header_values(changes: dict[str, int], reason: VerifyReason, tag: int | None) -> None:
    assert 16 - len(XML) % 16 not in (3, 16)
    ef = e.parse(resign(pki_file(), changes=changes))
    with pytest.raises(DecryptionError) as info:
        e.decrypt_pki(ef, identity("phone", "rsa2048")[0])
    assert info.value.reason is reason
    assert info.value.tag == tag


def test_mode_mismatch() -> None:
    with pytest.raises(DecryptionError, match="mode 1"):
        e.decrypt_pki(e.parse(sym_file()), identity("phone", "rsa2048")[0])
    with pytest.raises(DecryptionError, match="mode 0"):
        e.decrypt_symmetric(e.parse(pki_file()), KEY128)


# --------------------------------------------------------------------------- symmetric (our convention)
@pytest.mark.parametrize(("key", "bits", "aes"), [(KEY128, 128, 16), (KEY256, 256, 32)])
def test_symmetric_round_trip_and_layout(key: bytes, bits: int, aes: int) -> None:
    data = sym_file(key=key, hash_alg=2)
    ef = e.parse(data)
    enc = ef.encryption
    assert ef.method == "symmetric"
    assert ef.header.version == (2, 0)
    assert enc.mode == 1 and enc.wrapped_key is None and 25 not in enc.present_tags()
    assert enc.key_size == bits and enc.key_algorithm == 1 and enc.key_info_unknown == 0
    assert enc.hash_alg == 2 and enc.plaintext_hash == hashlib.sha256(XML).digest()
    e.verify(ef, identity("tftp")[1])
    assert e.decrypt_symmetric(ef, key) == XML
    assert enc.iv is not None and enc.padding is not None
    dec = Cipher(algorithms.AES(key[:aes]), modes.CBC(enc.iv)).decryptor()
    assert dec.update(ef.ciphertext) + dec.finalize() == XML + b"\x0d" * enc.padding


def test_symmetric_wrong_key() -> None:
    ef = e.parse(sym_file())
    with pytest.raises(DecryptionError):
        e.decrypt_symmetric(ef, bytes(16))
    with pytest.raises(DecryptionError) as info:
        e.decrypt_symmetric(ef, KEY256)
    assert info.value.reason is VerifyReason.UNSUPPORTED_KEY
    for bad in (b"", bytes(24), bytes(17)):
        with pytest.raises(DecryptionError):
            e.decrypt_symmetric(ef, bad)


def test_symmetric_build_refuses_bad_keys() -> None:
    for bad in (b"", bytes(24), bytes(15)):
        with pytest.raises(EncodeError):
            sym_file(key=bad)


@pytest.mark.parametrize(("text", "key"), [
    ("000102030405060708090a0b0c0d0e0f", bytes(range(16))),
    ("  000102030405060708090A0B0C0D0E0F\n", bytes(range(16))),
    ("0" * 32, None),
    ("0" * 64, None),
    ("ff" * 32, b"\xff" * 32),
])
def test_parse_hex_key(text: str, key: bytes | None) -> None:
    assert e.parse_hex_key(text) == key


@pytest.mark.parametrize("text", ["", "0" * 31, "0" * 33, "0" * 48, "g" * 32, "00 11" * 8, "0x" + "0" * 30])
def test_parse_hex_key_refuses(text: str) -> None:
    with pytest.raises(DecodeError):
        e.parse_hex_key(text)


# --------------------------------------------------------------------------- builder arguments
def test_build_refuses_bad_rand_and_hash() -> None:
    with pytest.raises(EncodeError, match="rand"):
        e.build_symmetric(plaintext=XML, filename=NAME, signer=tftp(), key=KEY128, timestamp=1,
                          rand=lambda n: b"x")
    with pytest.raises(EncodeError, match="hash"):
        sym_file(hash_alg=4)
    with pytest.raises(EncodeError, match="hash"):
        pki_file(hash_alg=0)


# --------------------------------------------------------------------------- parsing
def _custom(**enc: object) -> bytes:
    info = EncryptionInfo(**{"mode": 0, "iv": bytes(16), "padding": 16, "key_info_unknown": 0,  # type: ignore[arg-type]
                             "key_size": 1024, "key_algorithm": 1, "wrapped_key": bytes(128), "hash_alg": 1,
                             "plaintext_hash": bytes(20), **enc})
    return sign_file(version=(2, 0), filename=NAME, timestamp=1, body=bytes(32), signer=tftp(),
                     encryption=info)


@pytest.mark.parametrize(("field", "tag"), [("mode", 18), ("iv", 19), ("padding", 20), ("key_size", 23),
                                            ("key_algorithm", 24), ("wrapped_key", 25), ("hash_alg", 26),
                                            ("plaintext_hash", 27)])
def test_missing_encryption_tag_named(field: str, tag: int) -> None:
    with pytest.raises(DecodeError, match=f"tag {tag}") as info:
        e.parse(_custom(**{field: None}))
    assert info.value.tag == tag
    assert info.value.fmt == "enc.sgn"


def test_tag_22_is_optional() -> None:
    e.parse(_custom(key_info_unknown=None))


def test_plain_sgn_is_not_an_enc_file() -> None:
    data = sign_file(version=(1, 0), filename="x.sgn", timestamp=1, body=XML, signer=tftp())
    with pytest.raises(DecodeError, match="tag 16") as info:
        e.parse(data)
    assert info.value.tag == 16


@pytest.mark.parametrize(("changes", "body", "needle"), [
    ({"iv": bytes(15)}, bytes(32), "IV"),
    ({"padding": 0}, bytes(32), "pad count"),
    ({"padding": 17}, bytes(32), "pad count"),
    ({}, bytes(31), "multiple of 16"),
    ({}, b"", "multiple of 16"),
    ({"mode": 1}, bytes(32), "wrapped key"),
])
def test_structural_errors(changes: dict[str, object], body: bytes, needle: str) -> None:
    data = _custom(**changes)
    ph = parse_header(data, fmt="enc.sgn")
    with pytest.raises(DecodeError, match=needle):
        e.parse(data[:ph.body_offset] + body)


def test_unknown_mode_parses_but_never_decrypts() -> None:
    ef = e.parse(_custom(mode=7))
    with pytest.raises(DecryptionError):
        e.decrypt_pki(ef, identity("phone", "rsa2048")[0])
    with pytest.raises(DecryptionError):
        e.decrypt_symmetric(ef, KEY128)


def test_size_limit_and_truncation() -> None:
    data = pki_file()
    with pytest.raises(SizeLimitError):
        e.parse(data, limit=len(data) - 1)
    e.parse(data, limit=len(data))
    for n in (0, 1, 5, 9, 10, 50, 200):
        with pytest.raises(DecodeError):
            e.parse(data[:n])
    with pytest.raises(DecodeError):
        e.parse("text")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- verification
def test_verify_rejects_wrong_signer_and_tampering() -> None:
    data = pki_file()
    ef = e.parse(data)
    with pytest.raises(VerificationError) as info:
        e.verify(ef, identity("intruder")[1])
    assert info.value.reason is VerifyReason.BAD_SIGNATURE
    for i in (8, 20, ef.header.header_length - 1, ef.header.header_length, len(data) - 1):
        bad = bytearray(data)
        bad[i] ^= 1
        with pytest.raises((DecodeError, VerificationError)):
            e.verify(e.parse(bytes(bad)), identity("tftp")[1])
    bad = bytearray(data)
    bad[-1] ^= 1
    with pytest.raises(VerificationError) as info:
        e.verify(e.parse(bytes(bad)), identity("tftp")[1])
    assert info.value.reason is VerifyReason.BAD_SIGNATURE


def test_signed_message_excludes_only_the_signature() -> None:
    data = pki_file()
    ef = e.parse(data)
    off, length = ef.signature_span
    assert ef.signed_message == data[:off] + data[off + length:]
    assert length == 3 + len(ef.header.signature)


def test_other_header_versions_are_tolerated() -> None:
    # Spec §A.6: phones tolerate a header version they do not know; we build 2.0 unless told.
    data = e.build_symmetric(plaintext=XML, filename=NAME, signer=tftp(), key=KEY128, timestamp=1,
                             rand=rand_fn(), version=(2, 7))
    ef = e.parse(data)
    assert ef.header.version == (2, 7)
    assert e.decrypt_symmetric(ef, KEY128) == XML
