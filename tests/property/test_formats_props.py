"""Property tests for the signed-file formats (design §3.11; spec §A, §B, §C.1).

* ``parse(build(x)) == x`` for generated headers and records;
* ``build(parse(b)) == b`` for every vector;
* random and mutated bytes only ever raise DecodeError (SizeLimitError is one);
* every single-byte change inside a signed file is rejected (DecodeError or VerificationError).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.errors import DecodeError, VerificationError
from phoneemu.formats import detect, signed
from phoneemu.formats import header as hdr
from phoneemu.formats import trustlist as tlist

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
VECTOR_BYTES = {p.name: p.read_bytes() for p in sorted(VECTORS.iterdir()) if p.suffix in (".tlv", ".sgn")}
TLV = sorted(n for n in VECTOR_BYTES if n.endswith(".tlv"))
SGN = sorted(n for n in VECTOR_BYTES if n.endswith(".sgn"))
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
text = st.text(max_size=40)
blob = st.binary(max_size=80)


@st.composite
def encryption_infos(draw: st.DrawFn) -> hdr.EncryptionInfo | None:
    fields = dict(
        mode=draw(st.none() | u8), iv=draw(st.none() | blob), padding=draw(st.none() | u16),
        key_info_unknown=draw(st.none() | u8), key_size=draw(st.none() | u16),
        key_algorithm=draw(st.none() | u8), wrapped_key=draw(st.none() | blob),
        hash_alg=draw(st.none() | u8), plaintext_hash=draw(st.none() | blob))
    if all(v is None for v in fields.values()):
        return None
    return hdr.EncryptionInfo(**fields)  # type: ignore[arg-type]


unknown_tags = st.builds(hdr.UnknownTag, tag=st.integers(29, 255) | st.just(0), value=blob,
                         container=st.sampled_from([0, 3, 7, 9]))

headers = st.builds(
    hdr.SignedHeader,
    version=st.tuples(u8, u8),
    signer=st.builds(hdr.SignerInfo, name=text, serial=blob, issuer=text),
    hash_alg=u8, signature_algorithm=u8, modulus_code=u8,
    signature=st.binary(max_size=300), filename=text, timestamp=st.integers(0, 0xFFFFFFFF),
    signer_version=st.none() | st.tuples(u8, u8), encryption=encryption_infos(),
    unknown=st.lists(unknown_tags, max_size=4).map(tuple),
)

records = st.builds(
    tlist.TrustRecord,
    role=u16, dns_name=st.none() | text, subject=st.none() | text, issuer=st.none() | text,
    serial=st.none() | blob, public_key=st.none() | blob, signature=st.none() | blob,
    certificate=st.none() | blob, ip_address=st.none() | st.binary(min_size=4, max_size=4),
    cert_hash=st.none() | blob, hash_alg=st.none() | u8,
    unknown=st.lists(st.builds(tlist.RecordUnknown, tag=st.integers(13, 255), value=blob),
                     max_size=3).map(tuple),
)


@PROPS
@given(h=headers, body=st.binary(max_size=50))
def test_header_parse_build(h: hdr.SignedHeader, body: bytes) -> None:
    data = hdr.build_header(h) + body
    ph = hdr.parse_header(data, fmt="header")
    assert ph.header == h
    assert ph.body_offset % 4 == 0 and data[ph.body_offset:] == body
    assert hdr.build_header(ph.header) + body == data
    s_off, s_len = ph.signature_span
    assert data[s_off] == hdr.HeaderTag.SIGNATURE and ph.signed_message == data[:s_off] + data[s_off + s_len:]


@PROPS
@given(rec=records)
def test_record_parse_build(rec: tlist.TrustRecord) -> None:
    raw = tlist.build_record(rec)
    back = tlist.parse_record(raw, 0, len(raw))
    assert back == rec
    assert tlist.build_record(back) == raw


@pytest.mark.parametrize("name", sorted(VECTOR_BYTES))
def test_vectors_build_parse_identity(name: str) -> None:
    b = VECTOR_BYTES[name]
    if name in TLV:
        assert tlist.serialise(tlist.parse(b, lazy=False)) == b
    else:
        assert signed.serialise(signed.parse(b)) == b


def _full_parse(data: bytes) -> None:
    tl = tlist.parse(data, lazy=False)
    for r in tl.records:
        r.is_empty  # noqa: B018 - touch lazily computed fields
    signed.parse(data)
    detect.detect(data)


_HEADERS = [b[:hdr.parse_header(b, fmt="header").body_offset] for b in VECTOR_BYTES.values()]
_random_inputs = (
    st.binary(max_size=600)
    | st.binary(max_size=300).map(lambda b: b"\x01\x00\x02\x01\x02\x02\x00" + b)
    | st.tuples(st.sampled_from(_HEADERS), st.binary(max_size=300)).map(lambda t: t[0] + t[1])
    | st.tuples(st.sampled_from(_HEADERS), st.binary(max_size=300)).map(
        lambda t: t[0] + b"\x01\x00\x02" + (len(t[1]) + 5).to_bytes(2, "big") + t[1]))


@PROPS
@given(data=_random_inputs)
def test_random_bytes_only_decode_error(data: bytes) -> None:
    for fn in (_full_parse, lambda d: hdr.parse_header(d, fmt="header"), lambda d: tlist.parse(d, limit=100)):
        with contextlib.suppress(DecodeError):
            fn(data)


@PROPS
@given(name=st.sampled_from(sorted(VECTOR_BYTES)), data=st.data())
def test_mutated_vectors_raise_only_project_errors(name: str, data: st.DataObject) -> None:
    b = bytearray(VECTOR_BYTES[name])
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, len(b) - 1)) if b else 0
        if op == "flip" and b:
            b[pos] = data.draw(u8)
        elif op == "cut":
            del b[pos:pos + data.draw(st.integers(1, 40))]
        else:
            b[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    with contextlib.suppress(DecodeError, VerificationError):
        if name in TLV:
            tlist.parse(bytes(b), lazy=False).verify_self()
        else:
            signed.parse(bytes(b))


@PROPS
@given(name=st.sampled_from(TLV), data=st.data())
def test_single_byte_change_rejected(name: str, data: st.DataObject) -> None:
    b = VECTOR_BYTES[name]
    pos = data.draw(st.integers(0, len(b) - 1))
    new = data.draw(u8.filter(lambda v: v != b[pos]))
    mutated = b[:pos] + bytes([new]) + b[pos + 1:]
    with pytest.raises((DecodeError, VerificationError)):
        tlist.parse(mutated).verify_self()


@pytest.mark.parametrize("name", ["ctl_tokenless_4947.tlv", "SEP001122334455.cnf.xml.sgn"])
def test_every_single_byte_flip_rejected(name: str, pki: object) -> None:
    """Exhaustive: flipping the low bit of any byte of the file is never accepted."""
    b = VECTOR_BYTES[name]
    cert = pki.lab()["callmanager"].cert  # type: ignore[attr-defined]
    for pos in range(len(b)):
        mutated = b[:pos] + bytes([b[pos] ^ 1]) + b[pos + 1:]
        with pytest.raises((DecodeError, VerificationError)):
            if name.endswith(".tlv"):
                tlist.parse(mutated).verify_self()
            else:
                signed.verify(signed.parse(mutated), cert)
