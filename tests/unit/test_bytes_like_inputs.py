"""Every public parser and decoder takes bytes-like input by its bytes (phoneemu.wire.as_bytes).

A memoryview's ``len`` counts items, not bytes: one row of a 2-D ``cast('B', shape=[1, n])`` view, or
the 8-byte words of a ``'Q'`` view. A size limit checked with ``len`` let such a view of any size pass
(a 70 KiB trust list passed the 64 KiB limit, then failed later on its records; a signed file over
``limit`` parsed), a decoder indexing the view read items for bytes (RTP, TFTP, CAPF/TVS framing), and
input that is no bytes at all escaped as TypeError/AttributeError (or ``bytes(5)``: five zero bytes).
Pinned here: above the limit such a view is refused naming its bytes; within it, the result is the
one its bytes give; anything else is our DecodeError naming its type.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from phoneemu.errors import DecodeError, SizeLimitError
from phoneemu.formats import config, detect, encrypted, firmware, header, signed, trustlist
from phoneemu.net import tftp_codec
from phoneemu.protocols import capf, rtp, sdp, sip, tvs

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
ITL = (VECTORS / "itl_lab.tlv").read_bytes()
SGN = (VECTORS / "List.xml.sgn").read_bytes()
TVS_QUERY = (VECTORS / "tvs" / "query_request.bin").read_bytes()
SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
SIP = sip.build_message("REGISTER sip:lab.example SIP/2.0", [("Via", "SIP/2.0/TCP 127.0.0.1"),
                                                            ("Call-ID", "c1")], b"body")
RTP = rtp.build_rtp(rtp.RtpPacket(payload_type=0, sequence=1, timestamp=2, ssrc=3, payload=b"\xff" * 160))
CAPF = capf.encode(capf.message(capf.CapfCommand.AUTH_REQUEST, 7, (1, b"v")))
SMALL = 1024  # the limit given to the parsers that take one

Parse = Callable[[Any], object]


def _sip_stream(data: Any) -> object:
    stream = sip.SipStream()
    stream.feed(data)
    return stream.next()


def _record(data: Any) -> object:
    start, end = trustlist.parse(ITL).spans[0]
    return trustlist.parse_record(data, start, end)


#: name -> (entry point, a valid input); a stream decoder's input holds two frames (was: a 2-D view's
#: one row taken as one byte, so the first frame swallowed the second).
ENTRY_POINTS: dict[str, tuple[Parse, bytes]] = {
    "config.parse": (config.parse, b"<device><fullConfig>true</fullConfig></device>"),
    "trustlist.parse": (trustlist.parse, ITL),
    "trustlist.parse_record": (_record, ITL),
    "signed.parse": (signed.parse, SGN),
    "signed.strip": (signed.strip, SGN),
    "header.parse_envelope": (lambda d: header.parse_envelope(d, fmt="sgn", limit=1 << 20), SGN),
    "header.parse_header": (lambda d: header.parse_header(d, fmt="sgn"), SGN),
    "detect.detect": (detect.detect, SGN),
    "encrypted.parse": (encrypted.parse, b""),  # filled in by the fixture (needs a signer)
    "firmware.parse": (firmware.parse, b""),  # idem
    "firmware.parse_payload": (firmware.parse_payload, firmware.build_payload("load", b"image")),
    "sdp.parse_sdp": (sdp.parse_sdp, SDP),
    "sip.parse_message": (sip.parse_message, SIP),
    "sip.SipStream.feed": (_sip_stream, SIP),
    "rtp.parse_rtp": (rtp.parse_rtp, RTP),
    "rtp.header_length": (rtp.header_length, RTP),
    "tftp_codec.decode": (tftp_codec.decode, tftp_codec.data_packet(1, b"x" * 100)),
    "capf.decode": (capf.decode, CAPF),
    "capf.FrameDecoder.feed": (lambda d: capf.FrameDecoder().feed(d), CAPF * 2),
    "tvs.decode": (tvs.decode, TVS_QUERY),
    "tvs.FrameDecoder.feed": (lambda d: tvs.FrameDecoder().feed(d), TVS_QUERY * 2),
}

#: name -> (entry point with its limit, the limit, the error above it)
LIMITED: dict[str, tuple[Parse, int, type[DecodeError]]] = {
    "config.parse": (lambda d: config.parse(d, limit=SMALL), SMALL, SizeLimitError),
    "trustlist.parse": (lambda d: trustlist.parse(d, limit=SMALL), SMALL, SizeLimitError),
    "signed.parse": (lambda d: signed.parse(d, limit=SMALL), SMALL, SizeLimitError),
    "encrypted.parse": (lambda d: encrypted.parse(d, limit=SMALL), SMALL, SizeLimitError),
    "firmware.parse": (lambda d: firmware.parse(d, limit=SMALL), SMALL, SizeLimitError),
    "header.parse_envelope": (lambda d: header.parse_envelope(d, fmt="sgn", limit=SMALL), SMALL,
                              SizeLimitError),
    "sdp.parse_sdp": (sdp.parse_sdp, sdp.MAX_SDP, SizeLimitError),
    "sip.parse_message": (sip.parse_message, sip.MAX_HEAD + 4 + sip.MAX_BODY, SizeLimitError),
    "rtp.parse_rtp": (rtp.parse_rtp, rtp.MAX_PACKET, DecodeError),
    "tftp_codec.decode": (tftp_codec.decode, 0xFFFF, SizeLimitError),
    "capf.decode": (capf.decode, capf.MAX_FRAME, SizeLimitError),
    "tvs.decode": (tvs.decode, tvs.MAX_FRAME, SizeLimitError),
}


@pytest.fixture(scope="module")
def inputs(pki: Any) -> dict[str, bytes]:
    """Each entry point's valid input (the signed ones built with a seeded RSA-1024 signer)."""
    signer = pki.identity("CN=bytes-like", spec="rsa1024").signer
    out = {name: data for name, (_, data) in ENTRY_POINTS.items()}
    out["encrypted.parse"] = encrypted.build_symmetric(
        plaintext=b"<device/>", filename="SEP001122334455.cnf.xml.enc.sgn", signer=signer, key=b"k" * 16,
        timestamp=1, rand=lambda n: b"\x01" * n)
    out["firmware.parse"] = firmware.build(load_name="load", payload=b"image", signer=signer, timestamp=1)
    return out


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 8)


def _views(data: bytes) -> dict[str, memoryview]:
    """A 2-D view of ``data`` (len 1) and a ``'Q'`` view of it padded to whole words (len / 8)."""
    return {"2d": memoryview(data).cast("B", shape=[1, len(data)]),
            "uint64": memoryview(_padded(data)).cast("Q")}


def _outcome(parse: Parse, data: object) -> tuple[str, object]:
    """What ``parse`` makes of ``data``: its result, or our error's type and text."""
    try:
        return "result", parse(data)
    except DecodeError as exc:
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize("shape", ["2d", "uint64"])
@pytest.mark.parametrize("name", sorted(LIMITED))
def test_a_view_above_the_limit_is_refused_naming_its_bytes(name: str, shape: str) -> None:
    parse, limit, error = LIMITED[name]
    data = _padded(b"\x01" * (limit + 1))
    with pytest.raises(error, match=f"{len(data)} bytes exceeds"):
        parse(_views(data)[shape])


@pytest.mark.parametrize("shape", ["2d", "uint64"])
@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_a_view_within_the_limit_reads_as_its_bytes(name: str, shape: str, inputs: dict[str, bytes]) -> None:
    parse = ENTRY_POINTS[name][0]
    data = inputs[name] if shape == "2d" else _padded(inputs[name])
    want = _outcome(parse, data)
    if shape == "2d" or data == inputs[name]:
        assert want[0] == "result", want  # the valid input parses (padding may spoil it for 'Q')
    assert _outcome(parse, _views(inputs[name])[shape]) == want


@pytest.mark.parametrize("bad", ["text", 5, None, [1, 2]], ids=["str", "int", "None", "list"])
@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_input_that_is_not_bytes_like_is_a_decode_error_naming_its_type(name: str, bad: object) -> None:
    with pytest.raises(DecodeError, match=f"expected bytes, got {type(bad).__name__}"):
        ENTRY_POINTS[name][0](bad)


def test_tftp_option_offsets_of_no_datagram_are_none() -> None:
    """Its rule: empty when ``buf`` is no such packet (was: a view had no ``find``, AttributeError)."""
    rrq = b"\x00\x01a\x00octet\x00blksize\x00512\x00"
    assert tftp_codec.option_offsets(memoryview(rrq)) == tftp_codec.option_offsets(rrq) == {"blksize": 18}
    for bad in ("text", 5, None):
        assert tftp_codec.option_offsets(bad) == {}  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=1, max_size=300), name=st.sampled_from(sorted(set(ENTRY_POINTS) - {
    "encrypted.parse", "firmware.parse"})))
@example(data=b"\x00", name="trustlist.parse_record")  # a span past the data: was IndexError
def test_any_bytes_read_as_a_2d_view_give_what_the_bytes_give(data: bytes, name: str) -> None:
    parse = ENTRY_POINTS[name][0]
    assert _outcome(parse, memoryview(data).cast("B", shape=[1, len(data)])) == _outcome(parse, data)
