"""Red team of every parser of untrusted bytes (design §3.7, §3.11; errors.py "rule of the house").

Each public parse/decode entry point of phoneemu/formats, phoneemu/protocols and the TFTP codec gets the
same hostile inputs: random bytes, every truncation of a valid encoding, single-byte changes of it, each
2- and 4-byte window set to a huge length (0xFFFF, 0xFFFFFFFF), containers nested past the recursion
limit, and input that is not bytes (str, int, None, list; bytearray and memoryviews by their bytes).
Pinned: only phoneemu's own errors escape, a DecodeError says where (offset, field path or tag), one
naming no bytes says which type it got, and memory stays bounded whatever a length field claims
(tracemalloc peak of a few MiB). Text parsers (a digest header, a device name, a key typed by a user)
answer a value that is not text with our error or their documented "none" answer.

Escapes found and fixed (each test below failed before): the CAPF element value codecs
(``decode_certificate``, ``decode_sha2_signed_data``, ``decode_sudi_data``, ``decode_cstring``) let a
str, int or None out as TypeError and a 2-D view as NotImplementedError, and read a ``'Q'`` view by its
8-byte items; ``sip.parse_digest`` of a non-str was an AttributeError (bytes: "scheme b'Digest' is not
Digest"); ``tvs.is_valid_device_name`` / ``validate_device_name`` of a non-str a TypeError;
``media.packets_asked`` of a non-str an AttributeError (bytes were read as a number).
"""

from __future__ import annotations

import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from phoneemu.errors import DecodeError, PhoneEmuError, ProtocolError
from phoneemu.formats import config, detect, encrypted, firmware, header, signed, trustlist
from phoneemu.formats._tlv import clear_memos
from phoneemu.net import tftp_codec
from phoneemu.protocols import capf, media, rtp, sdp, sip, tvs

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: what a small input may cost at most, whatever its length fields claim
MEMORY_BOUND = 4 << 20

Parse = Callable[[Any], object]


def _trust_list(data: Any) -> object:
    tl = trustlist.parse(data, lazy=False)
    return [r.is_empty for r in tl.records], tl.is_empty


def _record(data: Any) -> object:
    """The record spanning all of ``data`` (its size in bytes, a view's too)."""
    if isinstance(data, memoryview):
        size = data.nbytes
    else:
        size = len(data) if isinstance(data, bytes | bytearray) else 0
    return trustlist.parse_record(data, 0, size)


def _sip_stream(data: Any) -> object:
    stream = sip.SipStream()
    stream.feed(data)
    return [stream.next() for _ in range(3)]


def _frames(decoder: Callable[[], tvs.FrameDecoder | capf.FrameDecoder]) -> Parse:
    def feed(data: Any) -> object:
        d = decoder()
        got = d.feed(data)
        d.eof()
        return got
    return feed


#: name -> entry point (bytes in); the valid encoding of each is in :func:`samples`
ENTRY_POINTS: dict[str, Parse] = {
    "trustlist.parse": _trust_list,
    "trustlist.parse_record": _record,
    "signed.parse": signed.parse,
    "signed.strip": signed.strip,
    "header.parse_header": lambda d: header.parse_header(d, fmt="sgn"),
    "header.parse_envelope": lambda d: header.parse_envelope(d, fmt="sgn", limit=1 << 20),
    "encrypted.parse": encrypted.parse,
    "firmware.parse": firmware.parse,
    "firmware.parse_payload": firmware.parse_payload,
    "config.parse": config.parse,
    "detect.detect": detect.detect,
    "capf.decode": capf.decode,
    "capf.FrameDecoder": _frames(capf.FrameDecoder),
    "capf.decode_certificate": capf.decode_certificate,
    "capf.decode_sha2_signed_data": capf.decode_sha2_signed_data,
    "capf.decode_sudi_data": capf.decode_sudi_data,
    "capf.decode_cstring": capf.decode_cstring,
    "tvs.decode": tvs.decode,
    "tvs.FrameDecoder": _frames(tvs.FrameDecoder),
    "tvs.parse_request": lambda d: tvs.parse_request(tvs.decode(d)),
    "tvs.TvsResponse.from_message": lambda d: tvs.TvsResponse.from_message(tvs.decode(d)),
    "rtp.parse_rtp": rtp.parse_rtp,
    "rtp.header_length": rtp.header_length,
    "sdp.parse_sdp": sdp.parse_sdp,
    "sip.parse_message": sip.parse_message,
    "sip.SipStream": _sip_stream,
    "tftp_codec.decode": tftp_codec.decode,
}

#: the escapes found here: the entry points whose non-bytes input escaped before
VALUE_CODECS = ("capf.decode_certificate", "capf.decode_sha2_signed_data", "capf.decode_sudi_data",
                "capf.decode_cstring")

_SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + b"A" * 40 + b"\r\n")
_SIP = sip.build_message("REGISTER sip:lab.example SIP/2.0", [
    ("Via", "SIP/2.0/TCP 127.0.0.1"), ("Call-ID", "c1"),
    ("WWW-Authenticate", 'Digest realm="r", nonce="n", qop="auth"')], b"body")
_CONFIG = (b"<device><fullConfig>true</fullConfig><TVS><members><member priority=\"0\"><port>2445</port>"
           b"<address>tvs</address></member></members></TVS><loadInformation>x</loadInformation></device>")


@pytest.fixture(scope="module")
def samples(pki: Any) -> dict[str, bytes]:
    """A valid encoding for every entry point (the signed ones by a seeded RSA-1024 signer)."""
    who = pki.identity("CN=redteam", spec="rsa1024")
    itl = (VECTORS / "itl_rollback.tlv").read_bytes()
    sgn = (VECTORS / "SEP001122334455.cnf.xml.sgn").read_bytes()
    start, end = trustlist.parse(itl).spans[0]
    query = (VECTORS / "tvs" / "query_request.bin").read_bytes()
    capf_msg = capf.encode(capf.message(capf.CapfCommand.AUTH_RESPONSE, 7, (capf.CapfTag.DEVICE_NAME, b"n\0"),
                                        (capf.CapfTag.CERTIFICATE, capf.encode_certificate(b"\x30\x03der"))))
    out = {
        "trustlist.parse": itl, "trustlist.parse_record": itl[start:end], "signed.parse": sgn,
        "signed.strip": sgn, "header.parse_header": sgn, "header.parse_envelope": sgn,
        "encrypted.parse": encrypted.build_symmetric(
            plaintext=b"<device/>", filename="SEP001122334455.cnf.xml.enc.sgn", signer=who.signer,
            key=b"k" * 16, timestamp=1, rand=lambda n: b"\x01" * n),
        "firmware.parse": firmware.build(load_name="load", payload=b"image", signer=who.signer, timestamp=1),
        "firmware.parse_payload": firmware.build_payload("load", b"image"),
        "config.parse": _CONFIG, "detect.detect": sgn,
        "capf.decode": capf_msg, "capf.FrameDecoder": capf_msg * 2,
        "capf.decode_certificate": capf.encode_certificate(b"\x30\x03der"),
        "capf.decode_sha2_signed_data": capf.encode_sha2_signed_data(b"s" * 20),
        "capf.decode_sudi_data": capf.encode_sudi_data(capf.SudiData(certificate=b"c" * 9,
                                                                     sha1_signature=b"s")),
        "capf.decode_cstring": capf.encode_cstring("CP-8861-SEP001122334455"),
        "tvs.decode": query, "tvs.FrameDecoder": query * 2, "tvs.parse_request": query,
        "tvs.TvsResponse.from_message": (VECTORS / "tvs" / "query_response.bin").read_bytes(),
        "rtp.parse_rtp": rtp.build_rtp(rtp.RtpPacket(payload_type=0, sequence=1, timestamp=2, ssrc=3,
                                                     payload=b"\xff" * 40)),
        "sdp.parse_sdp": _SDP, "sip.parse_message": _SIP, "sip.SipStream": _SIP * 2,
        "tftp_codec.decode": b"\x00\x01SEP001122334455.cnf.xml\x00octet\x00blksize\x001428\x00",
    }
    out["rtp.header_length"] = out["rtp.parse_rtp"]
    assert set(out) == set(ENTRY_POINTS)
    return out


def _outcome(name: str, data: object) -> tuple[str, object]:
    """What the entry point makes of ``data``: its result, or our error's type and text. Only phoneemu's
    errors may escape; a DecodeError about bytes says where (offset, path or tag)."""
    try:
        return "result", ENTRY_POINTS[name](data)
    except PhoneEmuError as exc:
        if isinstance(exc, DecodeError) and not str(exc.message).startswith("expected bytes"):
            assert exc.offset is not None or exc.path or exc.tag is not None, f"{name}: {exc} says not where"
        return type(exc).__name__, str(exc)


def _hostile(name: str, data: bytes) -> None:
    """``data`` as bytes, bytearray and a 2-D view all give the same outcome, only our errors."""
    want = _outcome(name, data)
    assert _outcome(name, bytearray(data)) == want
    if data:  # a view of no bytes has no 2-D shape
        assert _outcome(name, memoryview(data).cast("B", shape=[1, len(data)])) == want


# --------------------------------------------------------------------------- random and mutated bytes
@PROPS
@given(name=st.sampled_from(sorted(ENTRY_POINTS)), data=st.binary(max_size=200))
@example(name="capf.decode_sudi_data", data=b"\x00\xff\xff")  # a part claiming 65535 bytes
def test_random_bytes_raise_only_our_errors_saying_where(name: str, data: bytes) -> None:
    _hostile(name, data)


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_truncation_of_a_valid_encoding_is_refused_saying_where(name: str,
                                                                      samples: dict[str, bytes]) -> None:
    full = samples[name]
    assert _outcome(name, full)[0] == "result", "the valid encoding parses"
    for n in range(len(full)):
        _outcome(name, full[:n])


@PROPS
@given(name=st.sampled_from(sorted(ENTRY_POINTS)), where=st.floats(0, 1, exclude_max=True),
       value=st.integers(0, 255))
def test_single_byte_changes_raise_only_our_errors(name: str, where: float, value: int,
                                                   samples: dict[str, bytes]) -> None:
    b = bytearray(samples[name])
    b[int(where * len(b))] = value
    _hostile(name, bytes(b))


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_huge_length_fields_cost_no_memory(name: str, samples: dict[str, bytes]) -> None:
    """Every 2- and 4-byte window of the valid encoding set to 0xFFFF / 0xFFFFFFFF (a length field of 64 KiB
    or 4 GiB, wherever the length fields are): only our errors, and the peak of what is allocated stays a
    few MiB (a read never allocates more than the bytes present, wire.py)."""
    full = samples[name]
    clear_memos()
    tracemalloc.start()
    try:
        for width in (2, 4):
            for at in range(len(full) - width + 1):
                _outcome(name, full[:at] + b"\xff" * width + full[at + width:])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"{name}: {peak} bytes at peak"


# --------------------------------------------------------------------------- nesting
def test_config_nested_past_the_recursion_limit_is_refused_within_the_size_limit() -> None:
    depth = 2 * sys.getrecursionlimit() + 100
    data = b"<device><x>" + b"<a>" * depth + b"</a>" * depth + b"</x></device>"
    assert len(data) <= config.CONFIG_LIMIT
    with pytest.raises(DecodeError, match="nested deeper than") as got:
        config.parse(data)
    assert got.value.path == "device"


@pytest.mark.parametrize("tag", sorted(header.CONTAINER_TAGS))
def test_header_containers_nested_in_themselves_are_refused(tag: int) -> None:
    """A container holding itself, deeper than the recursion limit could walk: a duplicate tag at the
    second level, named with its offset (each container tag stands once in a header, spec §A.2)."""
    inner = b""
    for _ in range(2 * sys.getrecursionlimit()):
        inner = bytes([tag]) + len(inner).to_bytes(2, "big") + inner if len(inner) < 0xFFF0 else inner
    data = b"\x01\x00\x02\x01\x02\x02\x00\x02" + (10 + len(inner)).to_bytes(2, "big") + inner
    with pytest.raises(DecodeError, match=f"duplicate tag {tag}") as got:
        header.parse_header(data, fmt="sgn")
    assert got.value.offset == 13 and got.value.tag == tag


# --------------------------------------------------------------------------- not bytes
_NOT_BYTES = ["text", 5, None, [1, 2]]


@pytest.mark.parametrize("bad", _NOT_BYTES, ids=["str", "int", "None", "list"])
@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_input_that_is_not_bytes_is_a_decode_error_naming_its_type(name: str, bad: object) -> None:
    with pytest.raises(DecodeError, match=f"expected bytes, got {type(bad).__name__}"):
        ENTRY_POINTS[name](bad)


@pytest.mark.parametrize("name", VALUE_CODECS)
def test_a_capf_value_codec_names_the_element_of_a_value_that_is_not_bytes(name: str) -> None:
    with pytest.raises(DecodeError, match="expected bytes, got str") as got:
        ENTRY_POINTS[name]("text\0")
    assert got.value.path


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_views_read_as_their_bytes(name: str, samples: dict[str, bytes]) -> None:
    """A 2-D view (len 1) and a ``'Q'`` view (len = words) give what their bytes give."""
    data = samples[name] + b"\0" * (-len(samples[name]) % 8)
    want = _outcome(name, data)
    assert _outcome(name, memoryview(data).cast("B", shape=[1, len(data)])) == want
    assert _outcome(name, memoryview(data).cast("Q")) == want


# --------------------------------------------------------------------------- text parsers
@pytest.mark.parametrize("bad", [b"Digest realm=r", 5, None], ids=["bytes", "int", "None"])
def test_text_parsers_refuse_a_value_that_is_not_text(bad: object) -> None:
    name = type(bad).__name__
    with pytest.raises(DecodeError, match=f"expected text, got {name}") as got:
        sip.parse_digest(bad)  # type: ignore[arg-type]
    assert got.value.path == "WWW-Authenticate"
    for parse in (encrypted.parse_hex_key, config.parse_config_file_name):
        with pytest.raises(DecodeError):
            parse(bad)  # type: ignore[arg-type]
    assert tvs.is_valid_device_name(bad) is False  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="is not CP-<model>-SEP<12 hex>"):
        tvs.validate_device_name(bad, strict=True)  # type: ignore[arg-type]
    assert media.packets_asked(bad) == media.DEFAULT_PACKETS  # type: ignore[arg-type]


_TEXT_PARSERS: dict[str, Callable[[str], object]] = {
    "sip.parse_digest": sip.parse_digest,
    "tvs.validate_device_name": lambda s: tvs.validate_device_name(s, strict=True),
    "encrypted.parse_hex_key": encrypted.parse_hex_key,
    "config.parse_config_file_name": config.parse_config_file_name,
    "media.packets_asked": media.packets_asked,
}


@PROPS
@given(name=st.sampled_from(sorted(_TEXT_PARSERS)),
       text=st.text(max_size=120) | st.text(alphabet='Digest ,="\\ab\t', max_size=120))
def test_random_text_raises_only_our_errors(name: str, text: str) -> None:
    try:
        _TEXT_PARSERS[name](text)
    except PhoneEmuError as exc:
        assert exc.path, f"{name}: {exc} names no field"
