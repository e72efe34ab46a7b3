"""Hypothesis properties of ``.enc.sgn`` (spec §C.3/§C.5) and signed firmware loads (spec §D).

* round trips: decrypt(parse(build(p))) == p for both methods and any plaintext;
* random bytes, and random mutations of valid files, only ever raise DecodeError (or SizeLimitError);
* any single-byte change of a signed file is rejected by parse or by verify;
* the wrong key is always a DecryptionError; a re-signed, tampered ciphertext never decrypts.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import replace
from functools import cache

from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.crypto.keys import PrivateKey
from phoneemu.errors import DecodeError, DecryptionError, VerificationError
from phoneemu.formats import encrypted as e
from phoneemu.formats import firmware as fw
from phoneemu.formats.header import FileSigner, sign_header
from tests.signer_helpers import file_signer, self_signed

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def identity(name: str, spec: str = "rsa1024") -> tuple[PrivateKey, x509.Certificate]:
    return self_signed(f"CN={name};O=phoneemu", seed=f"props-encrypted-{name}", serial=31337, spec=spec)


def signer(name: str = "tftp") -> FileSigner:
    return file_signer(identity(name))


def rand(seed: int) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


def pki(plaintext: bytes, seed: int = 0, hash_alg: int = 1) -> bytes:
    return e.build_pki(plaintext=plaintext, filename="SEP0011223344AA.cnf.xml.enc.sgn", signer=signer(),
                       recipient_cert=identity("phone")[1], timestamp=1_700_000_000, hash_alg=hash_alg,
                       rand=rand(seed))


def sym(plaintext: bytes, key: bytes, seed: int = 0, hash_alg: int = 1) -> bytes:
    return e.build_symmetric(plaintext=plaintext, filename="SEP0011223344AA.cnf.xml.enc.sgn", signer=signer(),
                             key=key, timestamp=1_700_000_000, hash_alg=hash_alg, rand=rand(seed))


@cache
def sample_enc() -> bytes:
    return pki(b"<device><fullConfig>true</fullConfig></device>" * 2, seed=7)


@cache
def sample_sym() -> bytes:
    return sym(b"<device/>", bytes(range(16)), seed=8)


@cache
def sample_fw() -> bytes:
    return fw.build(load_name="sip88xx.14-2", payload=b"\x1f\x8b\x08" + bytes(range(60)),
                    signer=signer("imagesigning"), timestamp=1_700_000_000)


hash_codes = st.sampled_from([1, 2, 3])
keys = st.binary(min_size=16, max_size=16) | st.binary(min_size=32, max_size=32)


# --------------------------------------------------------------------------- round trips
@SETTINGS
@given(plaintext=st.binary(max_size=200), seed=st.integers(0, 2**32), hash_alg=hash_codes)
def test_pki_round_trip(plaintext: bytes, seed: int, hash_alg: int) -> None:
    ef = e.parse(pki(plaintext, seed, hash_alg))
    e.verify(ef, identity("tftp")[1])
    assert e.decrypt_pki(ef, identity("phone")[0]) == plaintext
    assert ef.encryption.padding == 16 - len(plaintext) % 16


@SETTINGS
@given(plaintext=st.binary(max_size=200), key=keys, seed=st.integers(0, 2**32), hash_alg=hash_codes)
def test_symmetric_round_trip(plaintext: bytes, key: bytes, seed: int, hash_alg: int) -> None:
    ef = e.parse(sym(plaintext, key, seed, hash_alg))
    e.verify(ef, identity("tftp")[1])
    assert ef.encryption.key_size == 8 * len(key)
    assert e.decrypt_symmetric(ef, key) == plaintext


@SETTINGS
@given(load=st.from_regex(r"[A-Za-z0-9._-]{1,40}", fullmatch=True).filter(lambda s: s not in (".", "..")),
       payload=st.binary(max_size=300), hash_alg=hash_codes)
def test_firmware_round_trip(load: str, payload: bytes, hash_alg: int) -> None:
    img = fw.parse(fw.build(load_name=load, payload=payload, signer=signer("imagesigning"), timestamp=1,
                            hash_alg=hash_alg))
    assert (img.load_name, img.payload) == (load, payload)
    fw.verify(img, [identity("imagesigning")[1]])


# --------------------------------------------------------------------------- wrong keys
@SETTINGS
@given(plaintext=st.binary(max_size=100), key=keys, other=keys)
def test_symmetric_wrong_key_is_decryption_error(plaintext: bytes, key: bytes, other: bytes) -> None:
    ef = e.parse(sym(plaintext, key))
    if other == key:
        return
    try:
        e.decrypt_symmetric(ef, other)
    except DecryptionError:
        return
    raise AssertionError("a wrong key was accepted")


@settings(max_examples=20, deadline=None)
@given(plaintext=st.binary(max_size=100), seed=st.integers(0, 2**32))
def test_pki_wrong_private_key_is_decryption_error(plaintext: bytes, seed: int) -> None:
    ef = e.parse(pki(plaintext, seed))
    try:
        e.decrypt_pki(ef, identity("other-phone")[0])
    except DecryptionError:
        return
    raise AssertionError("a wrong private key was accepted")


@SETTINGS
@given(st.data())
def test_resigned_tampered_ciphertext_never_decrypts(data: st.DataObject) -> None:
    use_pki = data.draw(st.booleans())
    raw = sample_enc() if use_pki else sample_sym()
    ef = e.parse(raw)
    body = bytearray(ef.ciphertext)
    i = data.draw(st.integers(0, len(body) - 1))
    body[i] ^= data.draw(st.integers(1, 255))
    bad = e.parse(sign_header(ef.header, bytes(body), signer()))
    e.verify(bad, identity("tftp")[1])  # validly signed, yet the content must not be accepted
    try:
        if use_pki:
            e.decrypt_pki(bad, identity("phone")[0])
        else:
            e.decrypt_symmetric(bad, bytes(range(16)))
    except DecryptionError:
        return
    raise AssertionError("tampered ciphertext decrypted")


@SETTINGS
@given(st.data())
def test_resigned_header_changes_never_decrypt_to_garbage(data: st.DataObject) -> None:
    ef = e.parse(sample_enc())
    enc = ef.encryption
    field = data.draw(st.sampled_from(["iv", "padding", "plaintext_hash"]))
    if field == "iv":
        assert enc.iv is not None
        new = replace(enc, iv=data.draw(st.binary(min_size=16, max_size=16).filter(lambda b: b != enc.iv)))
    elif field == "padding":
        new = replace(enc, padding=data.draw(st.integers(1, 16).filter(lambda p: p != enc.padding)))
    else:
        new = replace(enc, plaintext_hash=data.draw(st.binary(max_size=64).filter(
            lambda b: b != enc.plaintext_hash)))
    bad = e.parse(sign_header(replace(ef.header, encryption=new), ef.ciphertext, signer()))
    try:
        e.decrypt_pki(bad, identity("phone")[0])
    except DecryptionError:
        return
    raise AssertionError(f"changed {field} still decrypted")


# --------------------------------------------------------------------------- single-byte tamper
def _rejected(parse: Callable[[bytes], object], verify: Callable[[object], object], data: bytes) -> None:
    try:
        obj = parse(data)
    except DecodeError:
        return
    try:
        verify(obj)
    except VerificationError:
        return
    raise AssertionError("a tampered file parsed and verified")


@SETTINGS
@given(st.data())
def test_any_single_byte_change_of_enc_sgn_rejected(data: st.DataObject) -> None:
    raw = bytearray(data.draw(st.sampled_from([sample_enc(), sample_sym()])))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    _rejected(e.parse, lambda ef: e.verify(ef, identity("tftp")[1]), bytes(raw))  # type: ignore[arg-type]


@SETTINGS
@given(st.data())
def test_any_single_byte_change_of_firmware_rejected(data: st.DataObject) -> None:
    raw = bytearray(sample_fw())
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    _rejected(fw.parse, lambda img: fw.verify(img, [identity("imagesigning")[1]]),  # type: ignore[arg-type]
              bytes(raw))


# --------------------------------------------------------------------------- garbage in
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_only_decode_error(data: bytes) -> None:
    for parse in (e.parse, fw.parse):
        with contextlib.suppress(DecodeError):  # SizeLimitError is a DecodeError
            parse(data)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_files_only_decode_error(data: st.DataObject) -> None:
    """Structure-aware garbage: valid files with a few bytes changed, cut or inserted."""
    which = data.draw(st.sampled_from(["enc", "sym", "fw"]))
    raw = bytearray({"enc": sample_enc, "sym": sample_sym, "fw": sample_fw}[which]())
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["set", "cut", "insert"]))
        i = data.draw(st.integers(0, len(raw) - 1))
        if op == "set":
            raw[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del raw[i: i + data.draw(st.integers(1, 8))]
        else:
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        if not raw:
            break
    parse = fw.parse if which == "fw" else e.parse
    try:
        obj = parse(bytes(raw))
    except DecodeError:
        return
    # Whatever parsed must still be refused or decrypted honestly; nothing else may escape.
    if isinstance(obj, e.EncryptedFile):
        try:
            e.verify(obj, identity("tftp")[1])
            if obj.method == "pki":
                e.decrypt_pki(obj, identity("phone")[0])
            else:
                e.decrypt_symmetric(obj, bytes(range(16)))
        except VerificationError:
            pass
    else:
        with contextlib.suppress(VerificationError):
            fw.verify(obj, [identity("imagesigning")[1]])
