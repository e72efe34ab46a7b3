"""Properties of RTP (RFC 3550 §5.1) and SRTP (RFC 3711): round trips, random bytes only ever raise
DecodeError, any single-bit flip of a protected packet is refused."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.crypto import srtp
from phoneemu.crypto.srtp import SrtpContext
from phoneemu.errors import DecodeError
from phoneemu.protocols.rtp import RtpPacket, build_rtp, header_length, parse_rtp

SETTINGS = settings(max_examples=150, deadline=None)
KEY, SALT = bytes(range(16)), bytes(range(100, 114))

u32 = st.integers(0, 2**32 - 1)
packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 65535),
    timestamp=u32,
    ssrc=u32,
    marker=st.booleans(),
    csrcs=st.lists(u32, max_size=15).map(tuple),
    extension=st.none() | st.tuples(st.integers(0, 65535),
                                     st.binary(max_size=64).map(lambda b: b[:len(b) - len(b) % 4])),
    payload=st.binary(max_size=400),
    padding=st.integers(0, 255),
)
suites = st.sampled_from(sorted(srtp.SUITES))
# mostly version 2, so that random bytes get past the first check
rtp_like = st.tuples(st.integers(0x80, 0xBF), st.binary(max_size=120)).map(lambda t: bytes((t[0],)) + t[1])
any_bytes = st.binary(max_size=200) | rtp_like


@SETTINGS
@given(packets)
def test_rtp_round_trip(packet: RtpPacket) -> None:
    wire = build_rtp(packet)
    assert parse_rtp(wire) == packet
    assert build_rtp(parse_rtp(wire)) == wire
    assert header_length(wire) == packet.header_length


@SETTINGS
@given(any_bytes)
def test_parse_rtp_raises_only_decode_error(data: bytes) -> None:
    try:
        packet = parse_rtp(data)
    except DecodeError:
        return
    assert build_rtp(packet) == data or packet.padding  # padding bytes other than the count are not kept


@SETTINGS
@given(suites, packets, st.lists(st.integers(1, 3000), max_size=8), st.lists(packets, max_size=8))
def test_srtp_round_trip(suite: str, first: RtpPacket, steps: list[int], others: list[RtpPacket]) -> None:
    """A stream of one SSRC whose sequence numbers move forward (wrapping at 2^16) in steps up to 3000."""
    tx, rx = SrtpContext(suite, KEY, SALT), SrtpContext(suite, KEY, SALT)
    seq = first.sequence
    stream = [first]
    for step, other in zip(steps, others, strict=False):
        seq = (seq + step) % 65536
        stream.append(replace(other, ssrc=first.ssrc, sequence=seq))
    for packet in stream:
        wire = build_rtp(packet)
        protected = tx.protect(wire)
        assert len(protected) == len(wire) + srtp.SUITES[suite]
        assert rx.unprotect(protected) == wire
    wraps = (first.sequence + sum(steps[:len(others)])) // 65536
    assert rx.roc(first.ssrc) == tx.roc(first.ssrc, sending=True) == wraps


@SETTINGS
@given(suites, any_bytes)
def test_unprotect_raises_only_decode_error(suite: str, data: bytes) -> None:
    ctx = SrtpContext(suite, KEY, SALT, max_ssrcs=1)
    for _ in range(2):  # once with no SSRC tracked, once with the table possibly full
        try:
            ctx.unprotect(data)
        except DecodeError as exc:
            assert exc.path in ("length", "header", "ssrc", "auth_tag", "replay")
        else:
            raise AssertionError("random bytes authenticated")


@SETTINGS
@given(suites, packets, st.data())
def test_any_bit_flip_is_refused(suite: str, packet: RtpPacket, data: st.DataObject) -> None:
    tx, rx = SrtpContext(suite, KEY, SALT), SrtpContext(suite, KEY, SALT)
    protected = tx.protect(build_rtp(packet))
    bit = data.draw(st.integers(0, 8 * len(protected) - 1))
    forged = bytearray(protected)
    forged[bit // 8] ^= 0x80 >> (bit % 8)
    try:
        rx.unprotect(bytes(forged))
    except DecodeError:
        pass
    else:
        raise AssertionError(f"bit {bit} flipped and accepted")
    assert rx.unprotect(protected) == build_rtp(packet)
