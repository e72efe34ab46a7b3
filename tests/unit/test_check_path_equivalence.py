"""The fuzz check path's speed-ups give the same results as the plain definitions (issue #7).

* ``cipher.aes_cbc_decrypt`` (CBC built on a reused AES-ECB context) equals cryptography's own
  CBC decryption for random keys (128/192/256 bits), IVs and lengths, and keeps its size checks.
* A parsed header is marked ``_layout_ok`` (its layout names exactly its fields), so building skips
  ``_layout_matches``: that check agrees on the headers of fuzz mutants of every format, and the
  build is the same as with the check done.
* Exception text is rendered by module functions from the constructor's arguments: it equals the
  old ``where()``/``_render()`` formula for every combination of location fields, and str, repr,
  args, attributes, pickling, copying, ``raise ... from`` and traceback text behave as for any
  exception with that message.
* Parsed headers and trust-list records are built with ``_tlv.unchecked`` (no ``__post_init__``):
  on fuzz mutants of every format they equal, field for field and in the same field order, the
  objects the checked constructors build from the same values (whose checks pass).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import pickle
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu import errors
from phoneemu.crypto import cipher
from phoneemu.errors import DecodeError, DecryptionError, VerificationError
from phoneemu.formats import header, trustlist
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


def _parsed_headers(fmt: str, seed: int, count: int) -> Iterator[tuple[bytes, header.SignedHeader]]:
    """(mutant, its parsed header) for the mutants among the first ``count`` whose header parses."""
    mutator = Mutator(build_corpus(fmt))
    for i in range(count):
        data = input_for(mutator, seed, i).data
        try:
            yield data, header.parse_header(data, fmt=fmt).header
        except DecodeError:
            continue


@pytest.mark.parametrize("fmt", ["itl", "ctl", "sgn", "enc"])
def test_parsed_layout_always_matches(fmt: str) -> None:
    parsed = 0
    for _data, h in _parsed_headers(fmt, 7, 400):
        parsed += 1
        assert h.__dict__.get("_layout_ok") is True
        assert h.layout is not None and header._layout_matches(h, h.layout)
        unmarked = object.__new__(header.SignedHeader)  # the same header without the mark
        unmarked.__dict__.update({k: v for k, v in h.__dict__.items() if not k.startswith("_")})
        assert header._build(unmarked) == header._build(h)
    assert parsed > 50


def _old_text(message: str, *, fmt: str | None = None, offset: int | None = None, path: str | None = None,
              tag: int | None = None, file: str | None = None, line: int | None = None) -> str:
    """The message formula before issue #7 round 2 (where() as a joined list, then _render)."""
    parts: list[str] = []
    if file is not None:
        parts.append(f"{file}:{line}" if line is not None else file)
    if path:
        parts.append(path)
    if tag is not None:
        parts.append(f"(tag {tag})")
    if offset is not None:
        parts.append(f"at offset {offset}")
    where = " ".join(parts)
    head = f"{fmt}: " if fmt else ""
    return f"{head}{where}: {message}" if where else f"{head}{message}"


_LOCATIONS: dict[str, tuple[Any, ...]] = {
    "fmt": (None, "", "ctl"), "offset": (None, 0, 1042), "path": (None, "", "record[3].role"),
    "tag": (None, 0, 7, header.HeaderTag.SIGNATURE), "file": (None, "", "s.yaml"), "line": (None, 0, 12)}


def test_error_text_matches_old_formula() -> None:
    names = list(_LOCATIONS)
    for values in itertools.product(*_LOCATIONS.values()):
        kw = dict(zip(names, values, strict=True))
        exc = errors.PhoneEmuError("boom", **kw)
        want = _old_text("boom", **kw)
        assert str(exc) == want and exc.args == (want,) and repr(exc) == f"PhoneEmuError({want!r})"
        assert exc._render() == want
        for name, value in kw.items():
            assert getattr(exc, name) == value


def _samples() -> list[errors.PhoneEmuError]:
    reason = errors.VerifyReason
    return [
        errors.DecodeError("length 3, expected 2", fmt="ctl", offset=120, path="record[3].role", tag=4),
        errors.SizeLimitError("too big", fmt="itl", offset=65536),
        errors.ProtocolError("bad frame", path="tvs"),
        errors.EncodeError("too long", fmt="header", path="signer.name", tag=header.HeaderTag.SIGNER_NAME),
        errors.VerificationError("bad", reason=reason.BAD_SIGNATURE, fmt="sgn", path="header.signature"),
        errors.DecryptionError("wrong key", fmt="enc", path="body"),
        errors.TransportError("refused", kind="refused", code=3, path="tftp://x"),
        errors.ScenarioError("no such field", file="s.yaml", line=4, path="phones[0]"),
    ]


def test_errors_behave_as_plain_exceptions() -> None:
    for exc in _samples():
        text = exc.args[0]
        assert len(exc.args) == 1 and str(exc) == text and repr(exc) == f"{type(exc).__name__}({text!r})"
        for again in (pickle.loads(pickle.dumps(exc)), copy.copy(exc)):
            assert type(again) is type(exc) and again.args == exc.args and str(again) == text
            assert again.__dict__ == exc.__dict__
        try:
            try:
                raise KeyError("inner")
            except KeyError as inner:
                raise exc from inner
        except errors.PhoneEmuError as caught:
            assert caught is exc and isinstance(caught.__cause__, KeyError)
            lines = traceback.format_exception(caught)
        assert lines[-1] == f"{type(exc).__module__}.{type(exc).__qualname__}: {text}\n"
        assert "The above exception was the direct cause" in "".join(lines)
    v = _samples()[4]
    assert isinstance(v, VerificationError) and v.reason is errors.VerifyReason.BAD_SIGNATURE


def _fields(obj: Any) -> list[tuple[str, Any]]:
    return [(f.name, obj.__dict__[f.name]) for f in dataclasses.fields(obj)]


def _assert_same_as_checked(obj: Any) -> None:
    """``obj`` (built unchecked) equals the checked construction from its own field values."""
    checked = type(obj)(**dict(_fields(obj)))
    assert _fields(checked) == _fields(obj) and checked == obj and repr(checked) == repr(obj)
    assert list(obj.__dict__)[:len(_fields(obj))] == [f.name for f in dataclasses.fields(obj)]


@pytest.mark.parametrize("fmt", ["itl", "ctl", "sgn", "enc"])
def test_unchecked_parse_equals_checked_construction(fmt: str) -> None:
    header._PARSED.clear()
    header._UNSIGNED.clear()
    trustlist._RECORDS.clear()
    headers = records = 0
    for data, h in _parsed_headers(fmt, 11, 300):
        headers += 1
        _assert_same_as_checked(h)
        _assert_same_as_checked(h.signer)
        if h.encryption is not None:
            _assert_same_as_checked(h.encryption)
        if fmt in ("itl", "ctl"):
            try:
                recs = trustlist.parse(data, lazy=False).records
            except DecodeError:
                continue
            for rec in recs:
                records += 1
                _assert_same_as_checked(rec)
    assert headers > 50
    assert fmt not in ("itl", "ctl") or records > 100
