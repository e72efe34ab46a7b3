"""Signed firmware loads (spec §D; the layout below the signed header is our convention)."""

from __future__ import annotations

import datetime as dt
from functools import cache

import pytest
from cryptography import x509

from phoneemu.crypto import certs
from phoneemu.crypto.keys import KeySpec, PrivateKey, generate_key
from phoneemu.errors import DecodeError, EncodeError, SizeLimitError, VerificationError, VerifyReason
from phoneemu.formats import firmware as fw
from phoneemu.formats.header import EncryptionInfo, FileSigner, parse_header, sign_file

LOAD = "sip88xx.14-2-1-0001-14"
IMAGE = bytes(range(256)) * 5


@cache
def identity(name: str, spec: str = "rsa1024", serial: int = 77, issuer: str | None = None) \
        -> tuple[PrivateKey, x509.Certificate]:
    key = generate_key(KeySpec.parse(spec), unsafe_seed=f"test-firmware-{name}-{spec}")
    req = certs.CertRequest(subject=f"CN={name};O=phoneemu", public_key=key.public_key(), serial=serial,
                            not_before=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                            not_after=dt.datetime(2044, 1, 1, tzinfo=dt.UTC),
                            extended_key_usage=("code_signing",))
    if issuer is None:
        return key, certs.issue_certificate(req, issuer_key=key)
    ca_key, ca_cert = identity(issuer)
    return key, certs.issue_certificate(req, issuer_key=ca_key, issuer=ca_cert)


def image_signer(name: str = "imagesigning", **kw: object) -> FileSigner:
    key, cert = identity(name, **kw)
    return FileSigner(key=key, cert=cert)


def image(load: str = LOAD, payload: bytes = IMAGE, *, hash_alg: int = 3, signer: FileSigner | None = None,
          filename: str | None = None) -> bytes:
    return fw.build(load_name=load, payload=payload, signer=signer or image_signer(), timestamp=1_700_000_000,
                    hash_alg=hash_alg, filename=filename)


def test_round_trip_and_layout() -> None:
    data = image()
    img = fw.parse(data)
    assert img.load_name == LOAD
    assert img.payload == IMAGE
    assert img.raw == data
    assert img.header.version == (1, 0)
    assert img.header.hash_alg == 3
    assert img.header.filename == LOAD + ".loads"
    assert img.header.encryption is None
    name = LOAD.encode() + b"\0"
    manifest = b"PHEMUFW1" + len(name).to_bytes(2, "big") + name + len(IMAGE).to_bytes(4, "big")
    assert data[img.header.header_length:] == manifest + IMAGE
    assert fw.verify(img, [identity("imagesigning")[1]]) == identity("imagesigning")[1]
    assert fw.verify(img, identity("imagesigning")[1]) == identity("imagesigning")[1]


def test_empty_image_sha1_and_custom_filename() -> None:
    img = fw.parse(image(payload=b"", hash_alg=1, filename="SIP88xx.sbn"))
    assert img.payload == b"" and img.header.hash_alg == 1 and img.header.filename == "SIP88xx.sbn"
    fw.verify(img, [identity("imagesigning")[1]])


def test_payload_helpers() -> None:
    payload = fw.build_payload("a", b"xyz")
    assert payload == b"PHEMUFW1\x00\x02a\x00\x00\x00\x00\x03xyz"
    assert fw.parse_payload(payload) == ("a", b"xyz")
    assert fw.loads_file_name("a.b-c_d") == "a.b-c_d.loads"


def test_verify_picks_the_signer_among_trusted() -> None:
    others = [identity(f"other{i}", serial=100 + i)[1] for i in range(3)]
    signer_cert = identity("imagesigning")[1]
    assert fw.verify(fw.parse(image()), [*others, signer_cert]) == signer_cert


def test_verify_unknown_signer() -> None:
    img = fw.parse(image())
    with pytest.raises(VerificationError) as info:
        fw.verify(img, [identity("tftp", serial=5)[1]])
    assert info.value.reason is VerifyReason.UNKNOWN_SIGNER
    assert info.value.fmt == "firmware"
    with pytest.raises(VerificationError) as info:
        fw.verify(img, [])
    assert info.value.reason is VerifyReason.UNKNOWN_SIGNER


def test_verify_same_serial_and_issuer_but_other_key_is_bad_signature() -> None:
    # An impostor certificate copying the signer's serial and name: the key decides.
    impostor = identity("imagesigning", spec="rsa1024", serial=77)
    fake_key = generate_key(KeySpec.parse("rsa1024"), unsafe_seed="test-firmware-impostor")
    fake = certs.issue_certificate(
        certs.CertRequest(subject="CN=imagesigning;O=phoneemu", public_key=fake_key.public_key(), serial=77,
                          not_before=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                          not_after=dt.datetime(2044, 1, 1, tzinfo=dt.UTC)), issuer_key=fake_key)
    assert fake.serial_number == impostor[1].serial_number
    with pytest.raises(VerificationError) as info:
        fw.verify(fw.parse(image()), [fake])
    assert info.value.reason is VerifyReason.BAD_SIGNATURE


def test_verify_prefers_issuer_match_over_serial_only() -> None:
    signer = image_signer("ca-signed", serial=9, issuer="image-ca")
    img = fw.parse(image(signer=signer))
    decoy = identity("decoy", serial=9)[1]  # same serial, other issuer, other key
    assert fw.verify(img, [decoy, signer.cert]) == signer.cert


def test_verify_unsupported_hash() -> None:
    data = bytearray(image())
    ph = parse_header(bytes(data), fmt="firmware")
    # HASH_ALGORITHM TLV "08 00 01 03": patch the value to an unknown code.
    at = bytes(data[: ph.body_offset]).index(b"\x08\x00\x01\x03") + 3
    data[at] = 9
    with pytest.raises(VerificationError) as info:
        fw.verify(fw.parse(bytes(data)), [identity("imagesigning")[1]])
    assert info.value.reason is VerifyReason.UNSUPPORTED_HASH


def test_any_byte_flip_is_rejected() -> None:
    data = image(payload=b"firmware!" * 4)
    trusted = [identity("imagesigning")[1]]
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x5A
        with pytest.raises((DecodeError, VerificationError)):
            fw.verify(fw.parse(bytes(bad)), trusted)


@pytest.mark.parametrize(("mutate", "needle"), [
    (lambda p: b"PHEMUFW2" + p[8:], "magic"),
    (lambda p: p + b"\0", "unexpected byte"),
    (lambda p: p[:-1], "need"),
    (lambda p: p[:5], "need"),
    (lambda p: p[:8] + b"\xff\xff" + p[10:], "exceeds"),
    (lambda p: p.replace(b"a.b\0", b"a.bc"), "NUL"),
    (lambda p: p.replace(b"a.b\0", b"a/b\0"), "load name"),
    (lambda p: p.replace(b"a.b\0", b"a\xffb\0"), "ASCII"),
    (lambda p: p[:8] + b"\x00\x00" + p[14:], "NUL"),
])
def test_bad_payloads(mutate: object, needle: str) -> None:
    payload = fw.build_payload("a.b", b"0123456789")
    bad = mutate(payload)  # type: ignore[operator]
    data = sign_file(version=(1, 0), filename="a.b.loads", timestamp=1, body=bad, signer=image_signer(),
                     hash_alg=3)
    with pytest.raises(DecodeError, match=needle) as info:
        fw.parse(data)
    assert info.value.fmt == "firmware"
    with pytest.raises(DecodeError):
        fw.parse_payload(bad)


def test_encryption_tags_refused() -> None:
    data = sign_file(version=(1, 0), filename="a.loads", timestamp=1, body=fw.build_payload("a", b""),
                     signer=image_signer(), encryption=EncryptionInfo(mode=0))
    with pytest.raises(DecodeError, match="encryption") as info:
        fw.parse(data)
    assert info.value.tag == 16


def test_size_limit_and_non_bytes() -> None:
    data = image()
    with pytest.raises(SizeLimitError):
        fw.parse(data, limit=len(data) - 1)
    with pytest.raises(DecodeError):
        fw.parse(None)  # type: ignore[arg-type]
    for n in (0, 3, 10, 100):
        with pytest.raises(DecodeError):
            fw.parse(data[:n])


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a b", "x" * 129, "é", "a\0b"])
def test_bad_load_names_refused(name: str) -> None:
    with pytest.raises(EncodeError):
        fw.build_payload(name, b"")
    with pytest.raises(EncodeError):
        fw.loads_file_name(name)


def test_build_refuses_unknown_hash() -> None:
    with pytest.raises((EncodeError, VerificationError)):
        image(hash_alg=4)


def test_version_override() -> None:
    data = fw.build(load_name="a", payload=b"x", signer=image_signer(), timestamp=1, version=(1, 2))
    assert fw.parse(data).header.version == (1, 2)
