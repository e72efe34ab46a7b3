"""RTP header codec (RFC 3550 §5.1): round trips, each malformed case names its field, G.711 tone."""

from __future__ import annotations

import pytest

from phoneemu.errors import DecodeError, EncodeError
from phoneemu.protocols import rtp
from phoneemu.protocols.rtp import RtpPacket, build_rtp, g711_tone, header_length, linear_to_ulaw, parse_rtp

BASIC = RtpPacket(payload_type=0, sequence=0x1234, timestamp=0xDECAFBAD, ssrc=0xCAFEBABE,
                  payload=b"\xab" * 16)


def test_basic_wire_layout() -> None:
    wire = build_rtp(BASIC)
    assert wire == bytes.fromhex("80001234decafbadcafebabe") + b"\xab" * 16
    assert parse_rtp(wire) == BASIC
    assert header_length(wire) == BASIC.header_length == 12


@pytest.mark.parametrize("packet", [
    BASIC,
    RtpPacket(payload_type=8, sequence=0, timestamp=0, ssrc=0, marker=True),
    RtpPacket(payload_type=127, sequence=65535, timestamp=2**32 - 1, ssrc=2**32 - 1,
              csrcs=(1, 2, 2**32 - 1), payload=b"x"),
    RtpPacket(payload_type=18, sequence=7, timestamp=160, ssrc=5, extension=(0xBEDE, b"\x10\xaa\x00\x00"),
              payload=b"hello"),
    RtpPacket(payload_type=18, sequence=7, timestamp=160, ssrc=5, extension=(0x1000, b""), padding=3),
    RtpPacket(payload_type=0, sequence=1, timestamp=2, ssrc=3, csrcs=tuple(range(15)),
              extension=(1, bytes(8)), payload=b"p" * 100, padding=255),
    RtpPacket(payload_type=0, sequence=1, timestamp=2, ssrc=3, padding=1),
])
def test_round_trip(packet: RtpPacket) -> None:
    wire = build_rtp(packet)
    assert parse_rtp(wire) == packet
    assert build_rtp(parse_rtp(wire)) == wire
    assert header_length(wire) == packet.header_length
    assert len(wire) == packet.header_length + len(packet.payload) + packet.padding


def test_bits_on_the_wire() -> None:
    wire = build_rtp(RtpPacket(payload_type=96, sequence=1, timestamp=2, ssrc=3, marker=True, csrcs=(9, 10),
                               extension=(0xBEDE, bytes(4)), padding=4))
    assert wire[0] == 0x80 | 0x20 | 0x10 | 2
    assert wire[1] == 0x80 | 96
    assert wire[-4:] == b"\x00\x00\x00\x04"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"payload_type": 128}, "payload_type"),
    ({"payload_type": -1}, "payload_type"),
    ({"sequence": 65536}, "sequence"),
    ({"timestamp": 2**32}, "timestamp"),
    ({"ssrc": -1}, "ssrc"),
    ({"csrcs": tuple(range(16))}, "csrcs"),
    ({"csrcs": (1, 2**32)}, "csrcs[1]"),
    ({"extension": (65536, b"")}, "extension.profile"),
    ({"extension": (1, b"abc")}, "extension.data"),
    ({"padding": 256}, "padding"),
    ({"padding": -1}, "padding"),
])
def test_unencodable_values_name_the_field(kwargs: dict[str, object], field: str) -> None:
    fields: dict[str, object] = {"payload_type": 0, "sequence": 0, "timestamp": 0, "ssrc": 0, **kwargs}
    with pytest.raises(EncodeError) as info:
        build_rtp(RtpPacket(**fields))  # type: ignore[arg-type]
    assert info.value.path == field


def test_build_refuses_oversized_packet() -> None:
    with pytest.raises(EncodeError) as info:
        build_rtp(RtpPacket(payload_type=0, sequence=0, timestamp=0, ssrc=0, payload=bytes(rtp.MAX_PACKET)))
    assert info.value.path == "payload"
    build_rtp(RtpPacket(payload_type=0, sequence=0, timestamp=0, ssrc=0, payload=bytes(rtp.MAX_PACKET - 12)))


def _decode_error(data: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        parse_rtp(data)
    assert info.value.fmt == "rtp"
    return info.value


@pytest.mark.parametrize(("data", "field", "offset"), [
    (b"", "header", 0),
    (bytes.fromhex("80001234decafbadcafeba"), "header", 0),
    (bytes.fromhex("40001234decafbadcafebabe"), "version", 0),
    (bytes.fromhex("00001234decafbadcafebabe"), "version", 0),
    (bytes.fromhex("c0001234decafbadcafebabe"), "version", 0),
    (bytes.fromhex("82001234decafbadcafebabe00000001"), "csrcs", 12),
    (bytes.fromhex("90001234decafbadcafebabebede"), "extension", 12),
    (bytes.fromhex("90001234decafbadcafebabebede000200000000"), "extension.length", 14),
    (bytes.fromhex("91001234decafbadcafebabe00000001bede0001"), "extension.length", 18),
    (bytes.fromhex("a0001234decafbadcafebabe"), "padding", 12),
    (bytes.fromhex("a0001234decafbadcafebabe000000"), "padding", 14),
    (bytes.fromhex("a0001234decafbadcafebabe000004"), "padding", 14),
    (bytes.fromhex("b0001234decafbadcafebabebede000000000005"), "padding", 19),
])
def test_malformed_names_field_and_offset(data: bytes, field: str, offset: int) -> None:
    err = _decode_error(data)
    assert (err.path, err.offset) == (field, offset)


def test_padding_count_may_cover_everything_after_the_header() -> None:
    assert parse_rtp(bytes.fromhex("a0001234decafbadcafebabe000003")).payload == b""


def test_too_long_is_refused() -> None:
    wire = build_rtp(RtpPacket(payload_type=0, sequence=0, timestamp=0, ssrc=0, payload=bytes(2036)))
    assert len(wire) == rtp.MAX_PACKET
    parse_rtp(wire)
    assert _decode_error(wire + b"\x00").path == "length"


def test_header_length_ignores_padding_and_size() -> None:
    """SRTP asks header_length where the (encrypted) payload starts: padding is not looked at."""
    assert header_length(bytes.fromhex("a0001234decafbadcafebabe00")) == 12
    assert header_length(b"\x80" + bytes(2999)) == 12


def test_ulaw_encoder_known_codes() -> None:
    assert linear_to_ulaw(0) == 0xFF
    assert linear_to_ulaw(-1) == 0x7F
    assert linear_to_ulaw(32767) == 0x80
    assert linear_to_ulaw(32635) == 0x80
    assert linear_to_ulaw(-32768) == 0x00
    assert linear_to_ulaw(100) == 0xF2  # (100 + 0x84) = 232: exponent 0, mantissa 232 >> 3 & 15 = 13
    assert linear_to_ulaw(1000) == 0xCE  # 1132: exponent 3, mantissa 1132 >> 6 & 15 = 1
    # monotone: a larger magnitude never gets a smaller decoded step
    codes = [~linear_to_ulaw(s) & 0x7F for s in range(0, 32768, 7)]
    assert codes == sorted(codes)


def test_g711_tone() -> None:
    first = g711_tone(0)
    assert len(first) == 160
    assert first == g711_tone(0)
    assert len(g711_tone(3, samples=80)) == 80
    assert g711_tone(0, samples=0) == b""
    # 1 kHz at 8 kHz: period 8 samples, positive half then negative half, silence at the zero crossings
    assert first[:8] == bytes((0xFF, linear_to_ulaw(5657), linear_to_ulaw(8000), linear_to_ulaw(5657),
                               0xFF, linear_to_ulaw(-5657), linear_to_ulaw(-8000), linear_to_ulaw(-5657)))
    # phase continues across packets: packet n with 3 samples is samples 3n..3n+2 of one long tone
    long = g711_tone(0, samples=30)
    assert b"".join(g711_tone(n, samples=3) for n in range(10)) == long
    with pytest.raises(EncodeError):
        g711_tone(0, samples=-1)


def test_a_paced_tone_is_sent_one_packet_every_pace_seconds() -> None:
    """``media_port.send_tone(pace=)``: at once by default; with ``pace`` the packets go that far apart
    (the phone's ``--realtime``: 20 ms)."""
    import asyncio
    import time

    from phoneemu.phone.media_port import send_tone

    class Sink:
        def __init__(self) -> None:
            self.times: list[float] = []

        def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
            self.times.append(time.monotonic())

    for pace, low in ((0.0, 0.0), (0.02, 0.08)):
        sink = Sink()
        assert asyncio.run(send_tone(sink, None, ("127.0.0.1", 9), 5, pace=pace)) == 5  # type: ignore[arg-type]
        spread = sink.times[-1] - sink.times[0]
        assert spread >= low and (pace or spread < 0.05), (pace, spread)
