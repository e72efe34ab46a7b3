"""RTP fixed header codec — RFC 3550 §5.1 (with §5.3.1 header extension), sans-I/O.

Wire layout (all integers big-endian)::

    byte 0   V(2)=2 | P(1) | X(1) | CC(4)
    byte 1   M(1) | PT(7)
    2..3     sequence number (16 bits)
    4..7     timestamp (32 bits)
    8..11    SSRC (32 bits)
    12..     CC CSRC identifiers (32 bits each)
    [X=1]    extension: profile-defined 16 bits | length in 32-bit words (16 bits) | data
    ...      payload
    [P=1]    padding: the last octet counts the padding octets, itself included (never 0)

Rules:

* The version must be 2; a packet longer than :data:`MAX_PACKET` bytes is refused.
* A header, CSRC list or extension cut short, and a padding count of 0 or larger than what follows
  the header, are :class:`DecodeError` naming the field and its offset.
* :func:`header_length` validates only what SRTP (RFC 3711 §3.1) needs to find the payload: the
  fixed header, the CSRC list and the extension. It does not look at padding (encrypted in SRTP)
  nor at the overall size.
* :class:`RtpPacket` rejects, naming the field, any value that cannot be encoded (EncodeError);
  ``padding`` is the number of padding octets (0 = P bit clear), ``payload`` excludes them.
* :func:`g711_tone` is the media of emulated calls: ITU-T G.711 µ-law (bias 0x84, clip 32635) of a
  1 kHz sine sampled at 8 kHz whose phase continues from packet to packet.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

from phoneemu.errors import DecodeError, EncodeError
from phoneemu.wire import as_bytes

__all__ = [
    "FIXED_HEADER",
    "FMT",
    "MAX_PACKET",
    "VERSION",
    "RtpPacket",
    "build_rtp",
    "g711_tone",
    "header_length",
    "linear_to_ulaw",
    "parse_rtp",
    "tone_packets",
]

FMT = "rtp"
VERSION = 2
FIXED_HEADER = 12
MAX_PACKET = 2048

_MAX_CSRCS = 15
_U16 = 0xFFFF
_U32 = 0xFFFF_FFFF


@dataclass(frozen=True, kw_only=True, slots=True)
class RtpPacket:
    """One RTP packet. ``extension`` is (profile-defined 16 bits, data of a multiple of 4 bytes)."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None
    payload: bytes = b""
    padding: int = 0

    def __post_init__(self) -> None:
        _check_range(self.payload_type, 0x7F, "payload_type")
        _check_range(self.sequence, _U16, "sequence")
        _check_range(self.timestamp, _U32, "timestamp")
        _check_range(self.ssrc, _U32, "ssrc")
        if len(self.csrcs) > _MAX_CSRCS:
            raise EncodeError(f"{len(self.csrcs)} CSRCs, at most {_MAX_CSRCS}", fmt=FMT, path="csrcs")
        for i, csrc in enumerate(self.csrcs):
            _check_range(csrc, _U32, f"csrcs[{i}]")
        if self.extension is not None:
            profile, data = self.extension
            _check_range(profile, _U16, "extension.profile")
            if len(data) % 4:
                raise EncodeError(f"extension data of {len(data)} bytes is not a multiple of 4",
                                  fmt=FMT, path="extension.data")
            if len(data) // 4 > _U16:
                raise EncodeError(f"extension data of {len(data)} bytes exceeds {4 * _U16}",
                                  fmt=FMT, path="extension.data")
        _check_range(self.padding, 0xFF, "padding")

    @property
    def header_length(self) -> int:
        """Bytes of fixed header, CSRC list and extension: where the payload starts."""
        ext = 0 if self.extension is None else 4 + len(self.extension[1])
        return FIXED_HEADER + 4 * len(self.csrcs) + ext


def _check_range(value: int, top: int, field: str) -> None:
    if not 0 <= value <= top:
        raise EncodeError(f"{value} out of range 0..{top}", fmt=FMT, path=field)


def build_rtp(p: RtpPacket) -> bytes:
    """The wire bytes of ``p`` (RFC 3550 §5.1); EncodeError when longer than :data:`MAX_PACKET`."""
    size = p.header_length + len(p.payload) + p.padding
    if size > MAX_PACKET:
        raise EncodeError(f"packet of {size} bytes exceeds {MAX_PACKET}", fmt=FMT, path="payload")
    first = (VERSION << 6) | (0x20 if p.padding else 0) | (0x10 if p.extension is not None else 0)
    out = bytearray((first | len(p.csrcs), (0x80 if p.marker else 0) | p.payload_type))
    out += p.sequence.to_bytes(2, "big") + p.timestamp.to_bytes(4, "big") + p.ssrc.to_bytes(4, "big")
    for csrc in p.csrcs:
        out += csrc.to_bytes(4, "big")
    if p.extension is not None:
        profile, data = p.extension
        out += profile.to_bytes(2, "big") + (len(data) // 4).to_bytes(2, "big") + data
    out += p.payload
    if p.padding:
        out += bytes(p.padding - 1) + bytes((p.padding,))
    return bytes(out)


def header_length(data: bytes) -> int:
    """Length of the header of ``data`` incl. CSRCs and extension, checked to fit in ``data``
    (bytes-like: :func:`phoneemu.wire.as_bytes`)."""
    data = as_bytes(data, fmt=FMT)
    if len(data) < FIXED_HEADER:
        raise DecodeError(f"{len(data)} bytes, the fixed header needs {FIXED_HEADER}",
                          fmt=FMT, path="header", offset=0)
    version = data[0] >> 6
    if version != VERSION:
        raise DecodeError(f"version {version}, expected {VERSION}", fmt=FMT, path="version", offset=0)
    end = FIXED_HEADER + 4 * (data[0] & 0x0F)
    if len(data) < end:
        raise DecodeError(f"CSRC list of {data[0] & 0x0F} needs {end} bytes, got {len(data)}",
                          fmt=FMT, path="csrcs", offset=FIXED_HEADER)
    if data[0] & 0x10:
        if len(data) < end + 4:
            raise DecodeError(f"extension header needs {end + 4} bytes, got {len(data)}",
                              fmt=FMT, path="extension", offset=end)
        words = int.from_bytes(data[end + 2:end + 4], "big")
        ext_end = end + 4 + 4 * words
        if len(data) < ext_end:
            raise DecodeError(f"extension of {words} words needs {ext_end} bytes, got {len(data)}",
                              fmt=FMT, path="extension.length", offset=end + 2)
        end = ext_end
    return end


def parse_rtp(data: bytes) -> RtpPacket:
    """The packet of ``data`` (RFC 3550 §5.1); DecodeError naming the field on malformed input. The
    size limit counts bytes, a memoryview's too (:func:`phoneemu.wire.as_bytes`)."""
    data = as_bytes(data, fmt=FMT, limit=MAX_PACKET, too_large=lambda size: DecodeError(
        f"packet of {size} bytes exceeds {MAX_PACKET}", fmt=FMT, path="length", offset=MAX_PACKET))
    start = header_length(data)
    cc = data[0] & 0x0F
    csrcs = tuple(int.from_bytes(data[FIXED_HEADER + 4 * i:FIXED_HEADER + 4 * i + 4], "big")
                  for i in range(cc))
    extension: tuple[int, bytes] | None = None
    if data[0] & 0x10:
        at = FIXED_HEADER + 4 * cc
        extension = (int.from_bytes(data[at:at + 2], "big"), bytes(data[at + 4:start]))
    end = len(data)
    padding = 0
    if data[0] & 0x20:
        if end == start:
            raise DecodeError("padding bit set but nothing follows the header",
                              fmt=FMT, path="padding", offset=start)
        padding = data[-1]
        if padding == 0:
            raise DecodeError("padding count 0", fmt=FMT, path="padding", offset=end - 1)
        if padding > end - start:
            raise DecodeError(f"padding count {padding} exceeds the {end - start} bytes after the header",
                              fmt=FMT, path="padding", offset=end - 1)
        end -= padding
    return RtpPacket(
        payload_type=data[1] & 0x7F,
        sequence=int.from_bytes(data[2:4], "big"),
        timestamp=int.from_bytes(data[4:8], "big"),
        ssrc=int.from_bytes(data[8:12], "big"),
        marker=bool(data[1] & 0x80),
        csrcs=csrcs,
        extension=extension,
        payload=bytes(data[start:end]),
        padding=padding,
    )


_BIAS = 0x84
_CLIP = 32635


def linear_to_ulaw(sample: int) -> int:
    """ITU-T G.711 µ-law code of a 16-bit linear ``sample`` (bias 0x84, clip 32635)."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sign else sample, _CLIP) + _BIAS
    exponent = magnitude.bit_length() - 8  # 0..7: magnitude is in 0x84..0x7FFF
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


_TONE_AMPLITUDE = 8000  # about -12 dBFS
_TONE_PERIOD = 8  # 1 kHz at 8 kHz: one cycle every 8 samples
_TONE = bytes(linear_to_ulaw(round(_TONE_AMPLITUDE * math.sin(2 * math.pi * k / _TONE_PERIOD)))
              for k in range(_TONE_PERIOD))


def g711_tone(n: int, *, samples: int = 160) -> bytes:
    """``samples`` µ-law bytes of a 1 kHz sine at 8 kHz for packet number ``n`` (phase continues)."""
    if samples < 0:
        raise EncodeError(f"{samples} samples", fmt=FMT, path="samples")
    start = (n * samples) % _TONE_PERIOD
    cycles = -(-(start + samples) // _TONE_PERIOD)
    return (_TONE * cycles)[start:start + samples]


def tone_packets(count: int) -> Iterator[bytes]:
    """``count`` RTP packets of a 20 ms G.711 µ-law 1 kHz tone (payload type 0), one stream: a random
    SSRC, sequence and timestamp start (RFC 3550 §5.1), the first marked — what an emulated call sends."""
    ssrc, seq, ts = secrets.randbits(32), secrets.randbelow(1 << 15), secrets.randbits(31)
    for n in range(count):
        yield build_rtp(RtpPacket(payload_type=0, sequence=(seq + n) & 0xFFFF,
                                  timestamp=(ts + 160 * n) & 0xFFFFFFFF, ssrc=ssrc, marker=n == 0,
                                  payload=g711_tone(n)))
