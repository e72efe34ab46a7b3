"""``.enc.sgn`` errors name where (design §3.7, spec §C.3): the header tag at fault and the offset
of its TLV, the body offset for a body fault, tag 25 for an unwrap failure; the parsed header keeps
the offsets of its tags. Expected offsets come from a small walk of the bytes written here, not
from the parser under test."""

from __future__ import annotations

import random
from dataclasses import replace
from functools import cache

import pytest
from cryptography import x509

from phoneemu.crypto.keys import PrivateKey
from phoneemu.errors import DecodeError, DecryptionError, PhoneEmuError, VerificationError, VerifyReason
from phoneemu.formats import encrypted as e
from phoneemu.formats import signed
from phoneemu.formats.header import FileSigner, parse_header, sign_header
from tests.signer_helpers import file_signer, self_signed

NAME = "SEP001122AABBCC.cnf.xml.enc.sgn"
XML = b'<?xml version="1.0"?>\n<device><fullConfig>true</fullConfig></device>\n'
KEY128 = bytes(range(16))
_CONTAINERS = {3, 7, 9, 16, 17, 21}


def identity(name: str) -> tuple[PrivateKey, x509.Certificate]:
    return self_signed(f"CN={name};O=phoneemu", seed=f"test-enc-offsets-{name}", serial=77)


def tftp() -> FileSigner:
    return file_signer(identity("tftp"))


@cache
def pki_file() -> bytes:
    return e.build_pki(plaintext=XML, filename=NAME, signer=tftp(), recipient_cert=identity("phone")[1],
                       timestamp=1_700_000_000, rand=random.Random(3).randbytes)


@cache
def sym_file() -> bytes:
    return e.build_symmetric(plaintext=XML, filename=NAME, signer=tftp(), key=KEY128, timestamp=1_700_000_000,
                             rand=random.Random(4).randbytes)


def tag_positions(data: bytes) -> dict[int, int]:
    """Offset of each header tag's TLV, found by walking the bytes (tag, u16 length, value; 0x0D alone)."""
    header_length = int.from_bytes(data[8:10], "big")
    found: dict[int, int] = {}
    stack = [(0, header_length)]
    for _ in range(1000):  # bounded: a header has far fewer TLVs
        if not stack:
            break
        pos, end = stack.pop()
        if pos >= end:
            continue
        tag = data[pos]
        if tag == 13:
            stack.append((pos + 1, end))
            continue
        length = int.from_bytes(data[pos + 1:pos + 3], "big")
        found.setdefault(tag, pos)
        stack.append((pos + 3 + length, end))
        if tag in _CONTAINERS:
            stack.append((pos + 3, pos + 3 + length))
    return found


def resign(data: bytes, *, body: bytes | None = None, **enc_changes: object) -> bytes:
    """``data`` with encryption fields changed, re-signed by the TFTP key (fuzzer style)."""
    ph = parse_header(data, fmt="enc.sgn")
    assert ph.header.encryption is not None
    enc = replace(ph.header.encryption, **enc_changes)  # type: ignore[arg-type]
    return sign_header(replace(ph.header, encryption=enc), data[ph.body_offset:] if body is None else body,
                       tftp())


def set_value(data: bytes, tag: int, value: bytes) -> bytes:
    """``data`` with the value of header ``tag`` overwritten in place (same length, not re-signed)."""
    at = tag_positions(data)[tag] + 3
    return data[:at] + value + data[at + len(value):]


def assert_names_tag(exc: PhoneEmuError, data: bytes, tag: int) -> None:
    where = tag_positions(data)[tag]
    assert (exc.tag, exc.offset) == (tag, where), str(exc)
    assert f"(tag {tag}) at offset {where}:" in str(exc)


# --------------------------------------------------------------------------- the parsed header keeps offsets
def test_parsed_header_keeps_every_tag_offset() -> None:
    data = pki_file()
    header = e.parse(data).header
    positions = tag_positions(data)
    assert set(positions) >= {12, 16, 17, 19, 20, 21, 25, 27}
    assert {tag: header.offset_of(tag) for tag in positions} == positions
    assert header.offset_of(99) is None


# --------------------------------------------------------------------------- parse errors
def test_pad_count_out_of_range_names_tag_20_where_it_sits() -> None:
    data = set_value(pki_file(), 20, (17).to_bytes(2, "big"))
    with pytest.raises(DecodeError, match=r"pad count 17 is outside 1\.\.16") as info:
        e.parse(data)
    assert_names_tag(info.value, data, 20)


def test_short_iv_names_tag_19_where_it_sits() -> None:
    data = resign(pki_file(), iv=bytes(15))
    with pytest.raises(DecodeError, match="IV is 15 bytes, expected 16") as info:
        e.parse(data)
    assert_names_tag(info.value, data, 19)


def test_manual_key_file_with_wrapped_key_names_tag_25() -> None:
    data = resign(sym_file(), wrapped_key=bytes(128))
    with pytest.raises(DecodeError, match="must not carry a wrapped key") as info:
        e.parse(data)
    assert_names_tag(info.value, data, 25)


def test_ragged_ciphertext_names_the_body_offset() -> None:
    good = pki_file()
    data = resign(good, body=good[int.from_bytes(good[8:10], "big"):] + b"x")
    with pytest.raises(DecodeError, match="not a non-empty multiple of 16") as info:
        e.parse(data)
    assert (info.value.path, info.value.offset) == ("body", int.from_bytes(data[8:10], "big"))


# --------------------------------------------------------------------------- decryption errors
def test_decryption_error_takes_an_offset_and_old_callers_still_work() -> None:
    old = DecryptionError("bad", fmt="enc.sgn", path="body")
    assert old.offset is None and str(old) == "enc.sgn: body: bad"
    new = DecryptionError("bad", reason=VerifyReason.HASH_MISMATCH, fmt="enc.sgn", offset=40, path="body")
    assert (new.offset, new.reason) == (40, VerifyReason.HASH_MISMATCH)
    assert str(new) == "enc.sgn: body at offset 40: bad"


def test_bad_pad_bytes_name_where_they_start_in_the_body() -> None:
    good = pki_file()
    p = e.parse(good).encryption.padding
    assert p is not None and p < 16
    data = resign(good, padding=p + 1)  # one plaintext byte more is taken for padding: not 0x0D
    with pytest.raises(DecryptionError, match=rf"the last {p + 1} byte\(s\) are not 0x0D") as info:
        e.decrypt_pki(e.parse(data), identity("phone")[0])
    assert (info.value.path, info.value.offset) == ("body", len(data) - (p + 1))


def test_plaintext_hash_mismatch_names_tag_27() -> None:
    data = resign(pki_file(), plaintext_hash=bytes(20))
    with pytest.raises(DecryptionError, match="does not match tag 27") as info:
        e.decrypt_pki(e.parse(data), identity("phone")[0])
    assert info.value.reason is VerifyReason.HASH_MISMATCH
    assert_names_tag(info.value, data, 27)


def test_unwrap_with_another_phones_key_names_tag_25() -> None:
    data = pki_file()
    with pytest.raises(DecryptionError) as info:
        e.decrypt_pki(e.parse(data), identity("other-phone")[0])
    assert info.value.path == "header.encryption_key"
    assert_names_tag(info.value, data, 25)


@pytest.mark.parametrize(("tag", "value", "reason"), [
    (18, b"\x02", VerifyReason.DECRYPT_FAILED),
    (24, b"\x02", VerifyReason.UNSUPPORTED_KEY),
    (26, b"\x09", VerifyReason.UNSUPPORTED_HASH),
    (23, (1000).to_bytes(2, "big"), VerifyReason.DECRYPT_FAILED),
])
def test_bad_header_value_at_decryption_names_its_tag(tag: int, value: bytes, reason: VerifyReason) -> None:
    data = set_value(pki_file(), tag, value)
    with pytest.raises(DecryptionError) as info:
        e.decrypt_pki(e.parse(data), identity("phone")[0])
    assert info.value.reason is reason
    assert_names_tag(info.value, data, tag)


def test_symmetric_key_size_mismatch_names_tag_23() -> None:
    data = sym_file()
    with pytest.raises(DecryptionError, match="needs a 128-bit key") as info:
        e.decrypt_symmetric(e.parse(data), bytes(32))
    assert_names_tag(info.value, data, 23)


# --------------------------------------------------------------------------- signature checks
def test_signature_failure_names_tag_12_of_enc_sgn() -> None:
    data = bytearray(pki_file())
    data[-1] ^= 1
    with pytest.raises(VerificationError, match="does not verify") as info:
        e.verify(e.parse(bytes(data)), identity("tftp")[1])
    assert_names_tag(info.value, bytes(data), 12)


def test_signature_failure_names_tag_12_of_sgn() -> None:
    data = bytearray(signed.build(body=XML, filename="SEP001122AABBCC.cnf.xml.sgn", signer=tftp(),
                                  timestamp=1_700_000_000))
    data[-2] ^= 1
    with pytest.raises(VerificationError, match="does not verify") as info:
        signed.verify(signed.parse(bytes(data)), identity("tftp")[1])
    assert_names_tag(info.value, bytes(data), 12)


@pytest.mark.parametrize(("tag", "value", "reason"), [
    (8, b"\x09", VerifyReason.UNSUPPORTED_HASH),
    (11, b"\x07", VerifyReason.UNSUPPORTED_KEY),
    (11, b"\x02", VerifyReason.BAD_SIGNATURE),
])
def test_bad_signature_info_names_its_tag(tag: int, value: bytes, reason: VerifyReason) -> None:
    data = set_value(pki_file(), tag, value)
    with pytest.raises(VerificationError) as info:
        e.verify(e.parse(data), identity("tftp")[1])
    assert info.value.reason is reason
    assert_names_tag(info.value, data, tag)
