"""Signed-file header (spec §A): layout, containers, padding, signature span, verification."""

from __future__ import annotations

import dataclasses
from types import ModuleType

import pytest

from phoneemu.crypto import certs
from phoneemu.errors import DecodeError, EncodeError, VerificationError, VerifyReason
from phoneemu.formats import header as hdr


def tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + len(value).to_bytes(2, "big") + value


SIGNER = tlv(3, tlv(4, b"CN=a\0") + tlv(5, b"\x01") + tlv(6, b"CN=a\0"))
SIGINFO = tlv(7, tlv(8, b"\x01") + tlv(9, tlv(10, b"\x00") + tlv(11, b"\x02")))
REST = tlv(12, b"S" * 8) + tlv(14, b"f.sgn\0") + tlv(15, b"\0\0\0\1")


def raw_header(inner: bytes, *, body: bytes = b"", hl: int | None = None) -> bytes:
    size = 10 + len(inner) if hl is None else hl
    return tlv(1, b"\x01\x02") + tlv(2, size.to_bytes(2, "big")) + inner + body


def test_minimal_hand_made_header_parses() -> None:
    data = raw_header(SIGNER + SIGINFO + REST, body=b"BODY")
    ph = hdr.parse_header(data, fmt="header")
    h = ph.header
    assert h.version == (1, 2) and h.signer == hdr.SignerInfo(name="CN=a", serial=b"\x01", issuer="CN=a")
    got = (h.hash_alg, h.signature_algorithm, h.modulus_code, h.filename, h.timestamp)
    assert got == (1, 0, 2, "f.sgn", 1)
    assert ph.body_offset == len(data) - 4
    off = data.index(b"\x0c\x00\x08")
    assert ph.signature_span == (off, 11)
    assert ph.signed_message == data[:off] + data[off + 11:]
    assert hdr.build_header(h) + b"BODY" == data


def test_worked_example_offsets(vectors: dict[str, bytes]) -> None:
    """Spec §A.3a: every offset of the table."""
    b = vectors["itl_worked_example.tlv"]
    assert b[0:5] == bytes.fromhex("0100020102")
    assert b[5:10] == bytes.fromhex("0200020184")  # HEADER_LENGTH 388
    assert b[10:15] == bytes.fromhex("1c00020100")
    assert b[15:18] == bytes.fromhex("030047")
    assert b[18:21] == bytes.fromhex("040017") and b[21:44] == b"CN=SAST,O=SAST,OU=SAST\0"
    assert b[44:47] == bytes.fromhex("060017")
    assert b[70:77] == bytes.fromhex("0500106ba5de3a")
    assert b[89:92] == bytes.fromhex("07000f")
    assert b[92:96] == bytes.fromhex("08000101")
    assert b[96:99] == bytes.fromhex("090008")
    assert b[99:103] == bytes.fromhex("0a000100")
    assert b[103:107] == bytes.fromhex("0b000102")
    assert b[107:110] == bytes.fromhex("0c0100")
    assert b[366:381] == bytes.fromhex("0e000c") + b"ITLFile.tlv\0"
    assert b[381:388] == bytes.fromhex("0f00046954") + bytes.fromhex("0b16")
    assert b[388:391] == bytes.fromhex("010002")
    ph = hdr.parse_header(b, fmt="header")
    assert ph.body_offset == 388 and ph.signature_span == (107, 259)
    assert ph.header.timestamp == 0x69540B16


def test_tokenless_ctl_header_lengths(vectors: dict[str, bytes]) -> None:
    """Spec §B.6: header 336 = 333 bytes of TLVs + 3 pad; SIGNERID 149; 128-byte signature."""
    b = vectors["ctl_tokenless_4947.tlv"]
    ph = hdr.parse_header(b, fmt="header")
    assert ph.body_offset == 336 and b[333:336] == b"\x0d\x0d\x0d"
    assert b[10:13] == bytes.fromhex("030095")  # 149
    assert len(ph.header.signature) == 128 and ph.header.modulus_code == 1
    assert ph.header.signer_version is None
    nonsecure = hdr.parse_header(vectors["ctl_nonsecure_3746.tlv"], fmt="header")
    assert nonsecure.body_offset == 304 and len(nonsecure.header.signer.serial) == 10


def test_sign_file_cisco_order_alignment_and_verify(pki: ModuleType) -> None:
    who = pki.identity("CN=hdr-test;O=t", spec="rsa1024", seed="hdr")
    data = hdr.sign_file(version=(1, 0), filename="a.cnf.xml.sgn", timestamp=99, body=b"xyz",
                         signer=who.signer)
    ph = hdr.parse_header(data, fmt="sgn")
    assert ph.body_offset % 4 == 0
    assert ph.header.layout == ((3, (4, 5, 6)), (7, (8, (9, (10, 11)))), 12, 14, 15,
                                *([13] * (ph.body_offset - len(data[:ph.body_offset].rstrip(b"\r")))))
    assert ph.header.signer.serial == certs.serial_bytes(who.cert.serial_number)
    hdr.verify_signature(ph, who.cert.public_key(), fmt="sgn")
    assert data[ph.body_offset:] == b"xyz"


def test_encryption_tags_order_and_round_trip(pki: ModuleType) -> None:
    who = pki.identity("CN=hdr-test;O=t", spec="rsa1024", seed="hdr")
    enc = hdr.EncryptionInfo(mode=0, iv=bytes(16), padding=5, key_info_unknown=0, key_size=2048,
                           key_algorithm=1, wrapped_key=b"k" * 256, hash_alg=1, plaintext_hash=b"h" * 20)
    data = hdr.sign_file(version=(2, 0), filename="x.enc.sgn", timestamp=1, body=b"c" * 32,
                       signer=who.signer, encryption=enc)
    ph = hdr.parse_header(data, fmt="header")
    assert ph.header.encryption == enc
    lay = ph.header.layout
    assert lay is not None
    assert lay[2:8] == (12, 14, 15, (16, ((17, (18, 19, 20)), (21, (22, 23, 24, 25)))), 26, 27)
    hdr.verify_signature(ph, who.cert.public_key(), fmt="header")


def test_ec_signer_convention(pki: ModuleType) -> None:
    ca = pki.identity("CN=hdr-ca;O=t", spec="rsa1024", seed="hdr-ca")
    ec = pki.identity("CN=hdr-ec;O=t", spec="ec-p256", seed="hdr-ec", issuer=ca)
    data = hdr.sign_file(version=(1, 0), filename="e.sgn", timestamp=1, body=b"b", signer=ec.signer)
    ph = hdr.parse_header(data, fmt="header")
    assert ph.header.modulus_code == 0x80
    hdr.verify_signature(ph, ec.cert.public_key(), fmt="header")


@pytest.mark.parametrize(("inner", "why"), [
    (tlv(3, tlv(4, b"CN=a\0") + tlv(5, b"\x01"))[:-1] + SIGINFO + REST, "need|length"),
    (tlv(3, tlv(4, b"CN=a\0") + b"\x05\x00\x05\x01") + SIGINFO + REST, "signer_info.serial_number"),
    (SIGNER + SIGNER + SIGINFO + REST, "duplicate tag"),
    (SIGNER + SIGINFO + REST + tlv(14, b"g\0"), "duplicate tag"),
    (SIGNER + SIGINFO + tlv(12, b"S") + tlv(14, b"f.sgn\0"), "required tag 15"),
    (SIGNER + SIGINFO + tlv(12, b"S") + tlv(14, b"f.sgn") + tlv(15, b"\0\0\0\1"), "NUL"),
    (SIGNER + SIGINFO + tlv(12, b"S") + tlv(14, b"f\0") + tlv(15, b"\0\0\1"), "expected 4"),
    (SIGNER + tlv(7, tlv(8, b"\x01") + tlv(9, tlv(10, b"\x00") + tlv(11, b"\x02")) + b"\x0e")
     + REST, "need"),
], ids=["truncated-container", "nested-overrun", "dup-container", "dup-leaf", "missing", "no-nul",
        "fixed-length", "leftover-in-container"])
def test_malformed_headers_raise_decode_error(inner: bytes, why: str) -> None:
    with pytest.raises(DecodeError, match=why) as ei:
        hdr.parse_header(raw_header(inner), fmt="header")
    assert ei.value.fmt == "header" and ei.value.offset is not None


def test_version_first_header_length_second_and_bounds() -> None:
    good = raw_header(SIGNER + SIGINFO + REST)
    with pytest.raises(DecodeError, match="first TLV must be VERSION"):
        hdr.parse_header(good[5:10] + good[0:5] + good[10:], fmt="header")
    with pytest.raises(DecodeError, match="second TLV must be HEADER_LENGTH"):
        hdr.parse_header(good[:5] + tlv(28, b"\1\0") + good[5:], fmt="header")
    with pytest.raises(DecodeError, match="HEADER_LENGTH"):
        hdr.parse_header(raw_header(SIGNER + SIGINFO + REST, hl=len(good) + 1), fmt="header")
    with pytest.raises(DecodeError):  # header length cutting a TLV in half
        hdr.parse_header(raw_header(SIGNER + SIGINFO + REST, hl=len(good) - 2), fmt="header")
    for n in range(len(good)):
        with pytest.raises(DecodeError):
            hdr.parse_header(good[:n], fmt="header")


def test_padding_anywhere_and_unknown_tags_round_trip() -> None:
    signer = tlv(3, b"\x0d" + tlv(4, b"CN=a\0") + tlv(77, b"?") + tlv(5, b"\x01") + tlv(6, b"CN=a\0"))
    inner = (b"\x0d" + signer + tlv(99, b"") + SIGINFO + b"\x0d\x0d" + REST + tlv(28, b"\x01\x01"))
    data = raw_header(inner, body=b"rest")
    ph = hdr.parse_header(data, fmt="header")
    h = ph.header
    assert h.unknown == (hdr.UnknownTag(tag=77, value=b"?", container=3), hdr.UnknownTag(tag=99, value=b""))
    assert h.signer_version == (1, 1)
    assert hdr.build_header(h) + b"rest" == data
    # Changing a field keeps the layout; removing a field falls back to Cisco order.
    h2 = dataclasses.replace(h, filename="other.sgn")
    assert hdr.parse_header(hdr.build_header(h2), fmt="header").header == h2
    h3 = dataclasses.replace(h, signer_version=None)
    assert hdr.parse_header(hdr.build_header(h3), fmt="header").header == h3


def test_verification_reasons(pki: ModuleType) -> None:
    who = pki.identity("CN=hdr-test;O=t", spec="rsa1024", seed="hdr")
    other = pki.identity("CN=hdr-other;O=t", spec="rsa1024", seed="hdr-other")
    data = hdr.sign_file(version=(1, 0), filename="a.sgn", timestamp=1, body=b"abc", signer=who.signer)
    ph = hdr.parse_header(data, fmt="sgn")
    with pytest.raises(VerificationError) as ei:
        hdr.verify_signature(ph, other.cert.public_key(), fmt="sgn")
    assert ei.value.reason is VerifyReason.BAD_SIGNATURE
    bad_hash = dataclasses.replace(ph, header=dataclasses.replace(ph.header, hash_alg=4))
    with pytest.raises(VerificationError) as ei:
        hdr.verify_signature(bad_hash, who.cert.public_key(), fmt="sgn")
    assert ei.value.reason is VerifyReason.UNSUPPORTED_HASH
    for code, reason in ((7, VerifyReason.UNSUPPORTED_KEY), (2, VerifyReason.BAD_SIGNATURE)):
        bad_mod = dataclasses.replace(ph, header=dataclasses.replace(ph.header, modulus_code=code))
        with pytest.raises(VerificationError) as ei:
            hdr.verify_signature(bad_mod, who.cert.public_key(), fmt="sgn")
        assert ei.value.reason is reason
    for pos in (0, 3, 20, ph.signature_span[0] + 5, ph.body_offset, len(data) - 1):
        tampered = bytearray(data)
        tampered[pos] ^= 0x01
        with pytest.raises((DecodeError, VerificationError)):
            parsed = hdr.parse_header(bytes(tampered), fmt="sgn")
            hdr.verify_signature(parsed, who.cert.public_key(), fmt="sgn")


def test_builders_reject_unencodable_values(pki: ModuleType) -> None:
    who = pki.identity("CN=hdr-test;O=t", spec="rsa1024", seed="hdr")
    with pytest.raises(EncodeError, match="timestamp"):
        hdr.sign_file(version=(1, 0), filename="a", timestamp=1 << 32, body=b"", signer=who.signer)
    with pytest.raises(EncodeError, match="version"):
        hdr.sign_file(version=(1, 256), filename="a", timestamp=1, body=b"", signer=who.signer)
    with pytest.raises(EncodeError):
        hdr.UnknownTag(tag=12, value=b"")
    with pytest.raises(EncodeError):
        hdr.EncryptionInfo(padding=70000)
    other = pki.identity("CN=hdr-other;O=t", spec="rsa1024", seed="hdr-other")
    with pytest.raises(EncodeError, match="does not belong"):
        hdr.FileSigner(key=who.key, cert=other.cert)
