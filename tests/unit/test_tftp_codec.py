"""TFTP codec (RFC 1350/2347/2348/2349): round trips, validation, malformed input → DecodeError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import DecodeError, EncodeError
from phoneemu.net.tftp_codec import (
    Ack,
    Data,
    Error,
    OptionAck,
    ReadRequest,
    WriteRequest,
    decode,
    encode,
    negotiated,
    option_offsets,
    unsafe_name_reason,
)

_name = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=60)
_opts = st.dictionaries(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10),
                        st.text(alphabet="0123456789abc", max_size=8), max_size=4)
_packets = st.one_of(
    st.builds(lambda f, m, o: ReadRequest(filename=f, mode=m, options=o), _name,
              st.sampled_from(["octet", "netascii"]), _opts),
    st.builds(lambda f, o: WriteRequest(filename=f, options=o), _name, _opts),
    st.builds(lambda b, d: Data(block=b, data=d), st.integers(0, 0xFFFF), st.binary(max_size=600)),
    st.builds(lambda b: Ack(block=b), st.integers(0, 0xFFFF)),
    st.builds(lambda c, m: Error(code=c, message=m), st.integers(0, 8), _name),
    st.builds(lambda o: OptionAck(options=o), _opts),
)


@settings(max_examples=200, deadline=None)
@given(_packets)
def test_round_trip(pkt: object) -> None:
    raw = encode(pkt)  # type: ignore[arg-type]
    assert decode(raw) == pkt
    assert encode(decode(raw)) == raw


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_only_decode_error(raw: bytes) -> None:
    try:
        decode(raw)
    except DecodeError as exc:
        assert exc.fmt == "tftp"
        assert exc.offset is not None and 0 <= exc.offset <= len(raw)


def test_rrq_bytes_exact() -> None:
    raw = encode(ReadRequest(filename="ITLFile.tlv", options={"blksize": "1428", "tsize": "0"}))
    assert raw == b"\x00\x01ITLFile.tlv\x00octet\x00blksize\x001428\x00tsize\x000\x00"


def test_option_names_case_insensitive() -> None:
    pkt = decode(b"\x00\x01f\x00OCTET\x00BlkSize\x00512\x00")
    assert isinstance(pkt, ReadRequest)
    assert pkt.mode == "octet" and pkt.options == {"blksize": "512"}


@pytest.mark.parametrize(("raw", "path", "offset"), [
    (b"", "opcode", 0),
    (b"\x00", "opcode", 0),
    (b"\x00\x09abc", "opcode", 0),
    (b"\x00\x01file", "filename", 2),
    (b"\x00\x01file\x00", "mode", 7),
    (b"\x00\x01file\x00binary\x00", "mode", 7),
    (b"\x00\x01f\x00octet\x00blksize\x00", "options.blksize", 10),
    (b"\x00\x01f\x00octet\x00a\x001\x00A\x002\x00", "options.a", 14),
    (b"\x00\x01\xff\x00octet\x00", "filename", 2),
    (b"\x00\x03\x00", "block", 2),
    (b"\x00\x04\x00\x01\x00", "block", 4),
    (b"\x00\x05\x00\x01oops", "message", 4),
    (b"\x00\x05\x00\x01a\x00b", "message", 6),
])
def test_malformed_names_field(raw: bytes, path: str, offset: int) -> None:
    with pytest.raises(DecodeError) as ei:
        decode(raw)
    assert ei.value.path == path
    assert ei.value.offset == offset
    assert ei.value.fmt == "tftp"


def test_oversized_string_refused() -> None:
    with pytest.raises(DecodeError, match="longer than"):
        decode(b"\x00\x01" + b"a" * 600 + b"\x00octet\x00")


@pytest.mark.parametrize(("opts", "field"), [
    ({"blksize": "7"}, "options.blksize"),
    ({"blksize": "65465"}, "options.blksize"),
    ({"blksize": "abc"}, "options.blksize"),
    ({"timeout": "0"}, "options.timeout"),
    ({"timeout": "256"}, "options.timeout"),
    ({"tsize": "-1"}, "options.tsize"),
])
def test_option_values_validated(opts: dict[str, str], field: str) -> None:
    with pytest.raises(DecodeError) as ei:
        negotiated(opts)
    assert ei.value.path == field


def test_option_values_accepted() -> None:
    n = negotiated({"blksize": "65464", "timeout": "255", "tsize": "0", "windowsize": "4"})
    assert (n.blksize, n.timeout, n.tsize) == (65464, 255, 0)
    assert negotiated({"blksize": "8"}).blksize == 8


def test_encode_rejects_unencodable() -> None:
    with pytest.raises(EncodeError):
        ReadRequest(filename="a\x00b")
    with pytest.raises(EncodeError):
        Ack(block=70000)
    with pytest.raises(EncodeError):
        ReadRequest(filename="é")


@pytest.mark.parametrize("name", ["../etc/passwd", "a/../../b", "/etc/passwd", "a\\b", "a\x00b", "", "C:x",
                                  "a\nb"])
def test_unsafe_names(name: str) -> None:
    assert unsafe_name_reason(name) is not None


@pytest.mark.parametrize("name", ["ITLFile.tlv", "SEP001122334455.cnf.xml.sgn", "English_United_States/a.xml",
                                  "a..b"])
def test_safe_names(name: str) -> None:
    assert unsafe_name_reason(name) is None


def test_option_error_names_the_offset_of_the_value_in_the_datagram() -> None:
    buf = b"\x00\x01f\x00octet\x00tsize\x000\x00BlkSize\x007\x00"
    assert option_offsets(buf) == {"tsize": 16, "blksize": 26}
    request = decode(buf)
    assert isinstance(request, ReadRequest)
    with pytest.raises(DecodeError) as ei:
        negotiated(request.options, buf=buf)
    assert (ei.value.path, ei.value.offset) == ("options.blksize", 26)
    assert "at offset 26" in str(ei.value)
    assert option_offsets(b"\x00\x06blksize\x00x\x00") == {"blksize": 10}
    assert option_offsets(b"\x00\x04\x00\x01") == option_offsets(b"\x00\x01no-nul") == {}
