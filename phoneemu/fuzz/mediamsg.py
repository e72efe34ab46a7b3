"""Seeds, mutation and phoneemu targets of a call's media: SRTP packets and SDP descriptions (spec §G.14,
RFC 3711, RFC 3550, RFC 4566, RFC 4568).

Rules implemented here:

* Formats: ``srtp`` — the SRTP packets a phone in a call receives (:class:`phoneemu.crypto.srtp.SrtpContext`
  ``unprotect``), and ``sdp`` — the SDP answer a calling phone reads (:func:`phoneemu.protocols.sdp.parse_sdp`
  then :func:`phoneemu.phone.media_rules.decide_media_answer`), which is also the offer the lab's media
  resources read (:meth:`phoneemu.lab.media_service.MediaResources.invite`).
* An ``srtp`` input is ours (not in any spec): one byte naming the receiving suite (``0``:
  AES_CM_128_HMAC_SHA1_80, ``1``: AES_CM_128_HMAC_SHA1_32, anything else refused), then each packet as
  a 2-byte big-endian length and that many bytes, in the order they arrive; at most
  :data:`MAX_PACKETS` packets. The receiving master key and salt are fixed per suite
  (:data:`SRTP_KEYS`: the first 30 bytes of ``sha256(b"phoneemu fuzz srtp <suite>")``, key then salt):
  fuzzing keys that protect nothing. An ``sdp`` input is one description.
* Seeds are deterministic: fixed keys, SSRCs, sequence numbers and timestamps. ``srtp``: for each suite
  a stream of four G.711 packets (:func:`phoneemu.protocols.rtp.g711_tone`; the first with the marker,
  the second with two CSRCs and a header extension, the third with 4 bytes of padding) from sequence
  number 1000, and one that wraps (0xfffe, 0xffff, 0, 1: the rollover counter goes to 1). ``sdp``
  (:func:`phoneemu.protocols.sdp.build_sdp`): the phone's own offers (RTP/SAVP with its two crypto
  lines, tag 1 ``_80`` and tag 2 ``_32``; RTP/AVP) and the lab's answers (RTP/SAVP with one crypto
  line, tag 1 ``_80`` or tag 2 ``_32``; RTP/AVP).
* Mutation is structure-aware. ``srtp``: header fields (version, P/X/CC bits, CSRC counts and extension
  lengths that lie, marker/payload type/timestamp, sequence jumps across the wrap and the rollover
  estimate, SSRC changes, padding counts that lie), the authentication tag flipped, cut or extended,
  payload bits flipped, packets replayed, reordered, dropped, cut short, taken from another stream,
  very many of them, oversized, framing lengths that lie, the suite byte, raw garbage. ``sdp``: lines
  dropped, duplicated, swapped, inserted; type letters RFC 4566 does not define; ``c=`` with host
  names, IPv6, zones, multicast TTLs, garbage; ``m=`` port, profile and format lies; ``a=crypto`` tag,
  suite and key lies (base64 of the wrong length, MKI, lifetimes, several key-params, session
  parameters), 9 to 1,000 crypto lines; control characters, CR or LF alone, bytes that are not UTF-8,
  over-long lines and descriptions, direction attributes, other media sections, ``o=`` lies. Then,
  sometimes, a cut at a packet or line boundary or bit flips (:func:`~phoneemu.fuzz.messages.finish_mutant`).
* Targets (``--target phoneemu``). ``srtp``: a fresh receiving context of the input's suite, with
  :data:`SRTP_KEYS`, unprotects each packet in order; a DecodeError refuses that packet (the next one
  is still read); an input with a refused packet (or bad framing) is a rejection. Oracles (a finding
  when broken): a packet is accepted only when its bytes are those of a seed packet protected with that
  key and it was not accepted before in the same input (no forged, modified or replayed packet
  authenticates), its plaintext is that seed's RTP packet, and a refused packet changes none of the
  context's state (RFC 3711 §3.3). ``sdp``: :func:`~phoneemu.protocols.sdp.parse_sdp`; a description
  that parses must build (:func:`~phoneemu.protocols.sdp.build_sdp`) and parse back to an equal value —
  except when the build is refused by the size limits (build_sdp's documented EncodeError: the address
  goes into ``o=`` too, and ``a=rtpmap``/``a=ptime`` lines are added) — and is the answer to the phone's
  fixed RTP/SAVP offer and to its RTP/AVP offer: ``G.14-srtp`` only for an RTP/SAVP answer to the SAVP
  offer carrying exactly one crypto line whose tag and suite the phone offered and whose key-params
  (lifetime and MKI included) parse to a 16-byte key and a 14-byte salt
  (:func:`~phoneemu.crypto.srtp.parse_inline_key`); and is the offer a called phone gets
  (:func:`~phoneemu.phone.media_rules.decide_incoming`): ``G.14-srtp`` only when the phone's own rule
  allows SRTP, for one of the offer's crypto lines without an MKI, of a suite the phone has, whose key
  parses to 16 + 14 bytes. The input is also the body of an INVITE
  (``application/sdp``, a known device, over TLS) to the lab's music on hold, with a fresh
  :class:`~phoneemu.lab.media_service.MediaResources` per input, closed after it (one event loop per
  target): its response must parse as SIP with status 200, 400, 488 or 503, and a 200 must carry SDP that
  parses, that the offering phone does not refuse, and that is SRTP only for an offered crypto line whose
  key-params (lifetime, MKI) the lab can use. Nothing but DecodeError may escape.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import weakref
from collections.abc import Callable

from phoneemu.crypto import srtp
from phoneemu.errors import DecodeError, EncodeError
from phoneemu.fuzz.messages import finish_mutant
from phoneemu.protocols import rtp, sdp, sip
from phoneemu.protocols.media import AVP, SAVP, SRTP_PREFERENCE

__all__ = ["MAX_PACKETS", "MEDIA_FORMATS", "SRTP_KEYS", "MediaAcceptanceError", "SdpMutator", "SrtpMutator",
           "media_callable", "media_seeds", "srtp_frames"]

MEDIA_FORMATS = ("srtp", "sdp")
#: the suite byte of an ``srtp`` input (module docstring)
SUITE_CODES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
MAX_PACKETS = 64


def _key(label: str) -> tuple[bytes, bytes]:
    raw = hashlib.sha256(f"phoneemu fuzz {label}".encode()).digest()[:30]
    return raw[:16], raw[16:]


#: suite -> (master key, master salt) of the ``srtp`` seeds and receiving contexts (fixed, public)
SRTP_KEYS = {suite: _key(f"srtp {suite}") for suite in SUITE_CODES}
_STREAMS = (("stream", 1000, 0x5EED0001), ("wrap", 0xFFFE, 0x5EED0002))  # name, first sequence, SSRC
_TIMESTAMP = 0x10000000

_PHONE = "10.0.0.9"
_LAB = "10.0.0.1"
_MAC = "001122334455"
_DEVICE = f"SEP{_MAC}"
_PHONE_KEYS = {1: _key("sdp phone tag 1"), 2: _key("sdp phone tag 2")}
_LAB_KEY = _key("sdp lab")


def _phone_crypto() -> tuple[sdp.Crypto, ...]:
    return tuple(sdp.Crypto(tag=tag, suite=suite, key_params=srtp.inline_key(*_PHONE_KEYS[tag]))
                 for tag, suite in ((1, SUITE_CODES[0]), (2, SUITE_CODES[1])))


def _rtp_packets(first: int, ssrc: int) -> list[bytes]:
    out = []
    for n in range(4):
        out.append(rtp.build_rtp(rtp.RtpPacket(
            payload_type=0, sequence=(first + n) & 0xFFFF, timestamp=_TIMESTAMP + 160 * n, ssrc=ssrc,
            marker=n == 0, payload=rtp.g711_tone(n),
            csrcs=(0x0C0C0001, 0x0C0C0002) if n == 1 else (),
            extension=(0xBEDE, b"\x10\xab\x00\x00" * 2) if n == 1 else None, padding=4 if n == 2 else 0)))
    return out


def srtp_frames(suite_code: int, packets: list[bytes]) -> bytes:
    """An ``srtp`` input: the suite byte, then each packet with its 2-byte big-endian length."""
    return bytes((suite_code,)) + b"".join(len(p).to_bytes(2, "big") + p for p in packets)


def _srtp_streams() -> list[tuple[str, int, list[bytes], list[bytes]]]:
    """(name, suite code, SRTP packets, their RTP packets) of each seed stream."""
    out: list[tuple[str, int, list[bytes], list[bytes]]] = []
    for code, suite in enumerate(SUITE_CODES):
        for name, first, ssrc in _STREAMS:
            plain = _rtp_packets(first, ssrc)
            ctx = srtp.SrtpContext(suite, *SRTP_KEYS[suite])
            out.append((f"{name}-{suite[-2:]}", code, [ctx.protect(p) for p in plain], plain))
    return out


def media_seeds(fmt: str) -> list[tuple[str, bytes]]:
    """Named valid inputs of ``fmt`` (see module docstring)."""
    if fmt == "srtp":
        return [(name, srtp_frames(code, packets)) for name, code, packets, _ in _srtp_streams()]
    if fmt == "sdp":
        lab_80 = sdp.Crypto(tag=1, suite=SUITE_CODES[0], key_params=srtp.inline_key(*_LAB_KEY))
        lab_32 = sdp.Crypto(tag=2, suite=SUITE_CODES[1], key_params=srtp.inline_key(*_LAB_KEY))

        def offer(address: str, port: int, profile: str, crypto: tuple[sdp.Crypto, ...], user: str) -> bytes:
            return sdp.build_sdp(sdp.AudioOffer(address=address, port=port, profile=profile, formats=(0,),
                                                crypto=crypto, session_id=port, version=1, origin_user=user))

        return [
            ("phone-offer-srtp", offer(_PHONE, 20000, SAVP, _phone_crypto(), _DEVICE)),
            ("phone-offer-rtp", offer(_PHONE, 20002, AVP, (), _DEVICE)),
            ("lab-answer-srtp-80", offer(_LAB, 30000, SAVP, (lab_80,), "moh")),
            ("lab-answer-srtp-32", offer(_LAB, 30002, SAVP, (lab_32,), "moh")),
            ("lab-answer-rtp", offer(_LAB, 30004, AVP, (), "moh")),
        ]
    raise EncodeError(f"{fmt!r} is not a media format ({', '.join(MEDIA_FORMATS)})", path="format")


# --------------------------------------------------------------------------- srtp mutation
def _split_frames(data: bytes) -> tuple[int, list[bytes]]:
    """The suite byte and packets of an ``srtp`` input; never fails (what does not frame is dropped)."""
    code, pos = (data[0] if data else 0), 1
    out: list[bytes] = []
    while pos + 2 <= len(data) and len(out) < 4 * MAX_PACKETS:
        n = int.from_bytes(data[pos:pos + 2], "big")
        out.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    return code, out


def _header_end(p: bytes | bytearray) -> int:
    """Where the payload of ``p`` would start (lenient: clipped to the packet)."""
    if len(p) < rtp.FIXED_HEADER:
        return len(p)
    end = rtp.FIXED_HEADER + 4 * (p[0] & 0x0F)
    if p[0] & 0x10 and len(p) >= end + 4:
        end += 4 + 4 * int.from_bytes(p[end + 2:end + 4], "big")
    return min(end, len(p))


def _flip(rng: random.Random, b: bytearray, lo: int, hi: int) -> bool:
    if hi <= lo:
        return False
    for _ in range(rng.randint(1, 4)):
        b[rng.randrange(lo, hi)] ^= 1 << rng.randrange(8)
    return True


class SrtpMutator:
    """Mutants of the ``srtp`` seeds; ``mutate(rng)`` is deterministic in ``rng``."""

    OPS = ("version", "padding-bit", "extension-bit", "csrc-count", "extension-length", "header-field",
           "sequence-jump", "ssrc-change", "padding-count", "tag-flip", "tag-cut", "tag-extend",
           "payload-flip", "replay", "reorder", "drop", "truncate-packet", "splice", "many-packets",
           "oversize", "frame-length", "suite", "garbage")
    #: what reaches past the tag check to the receiver's state (replay window, rollover counter, several
    #: SSRCs): chosen more often than its share of OPS
    STREAM_OPS = ("replay", "reorder", "drop", "splice")

    def __init__(self, fmt: str, seeds: tuple[bytes, ...], *, max_ops: int = 3) -> None:
        if fmt != "srtp":
            raise EncodeError(f"{fmt!r} is not the srtp format", path="format")
        self.fmt = fmt
        self.seeds = seeds
        self.parsed = [_split_frames(s) for s in seeds]
        self.max_ops = max(1, max_ops)

    def mutate(self, rng: random.Random) -> tuple[int, bytes, tuple[str, ...]]:
        si = rng.randrange(len(self.seeds))
        code, frames = self.parsed[si]
        tag_len = srtp.SUITES[SUITE_CODES[code]] if code < len(SUITE_CODES) else 10
        packets = [bytearray(p) for p in frames]
        lies: dict[int, int] = {}  # packet index -> length written in its frame instead of its own
        prefix = bytes((code,))
        tail = b""
        applied: list[str] = []
        n_ops = 1 + sum(rng.random() < 0.3 for _ in range(self.max_ops - 1))
        for _ in range(n_ops):
            op = rng.choice(self.STREAM_OPS if rng.random() < 0.3 else self.OPS)
            if not packets and op not in ("splice", "garbage", "suite"):
                continue
            k = rng.randrange(len(packets)) if packets else 0
            p = packets[k] if packets else bytearray()
            body_end = max(0, len(p) - tag_len)
            if op in ("version", "padding-bit", "extension-bit", "csrc-count", "header-field",
                      "sequence-jump", "ssrc-change") and len(p) < rtp.FIXED_HEADER:
                continue
            if op == "version":
                p[0] = (p[0] & 0x3F) | (rng.choice((0, 1, 3)) << 6)
            elif op == "padding-bit":
                p[0] ^= 0x20
            elif op == "extension-bit":
                p[0] ^= 0x10
            elif op == "csrc-count":
                p[0] = (p[0] & 0xF0) | rng.choice([c for c in range(16) if c != p[0] & 0x0F])
            elif op == "extension-length":
                at = rtp.FIXED_HEADER + 4 * (p[0] & 0x0F) if p else 0
                if p and p[0] & 0x10 and len(p) >= at + 4:
                    words = int.from_bytes(p[at + 2:at + 4], "big")
                    lie = rng.choice((0, 1, words + 1, max(0, words - 1), 0xFFFF, 0x0200, len(p) // 4))
                    p[at + 2:at + 4] = (lie & 0xFFFF).to_bytes(2, "big")
                elif p:
                    p[0] |= 0x10  # says an extension follows the CSRCs: the payload is read as one
                else:
                    continue
            elif op == "header-field":
                which = rng.randrange(3)
                if which == 0:
                    p[1] ^= 0x80
                elif which == 1:
                    p[1] = (p[1] & 0x80) | rng.choice((8, 13, 18, 72, 96, 127))
                else:
                    p[4:8] = rng.choice((0, 0xFFFFFFFF, rng.getrandbits(32))).to_bytes(4, "big")
            elif op == "sequence-jump":
                seq = int.from_bytes(p[2:4], "big")
                jump = rng.choice((seq + 1, seq - 1, seq + 0x8000, seq + 0x8001, seq - 0x8001, seq + 0x7FFF,
                                   0, 0xFFFF, 0xFFFE, 0x8000, rng.getrandbits(16)))
                p[2:4] = (jump & 0xFFFF).to_bytes(2, "big")
            elif op == "ssrc-change":
                ssrc = int.from_bytes(p[8:12], "big")
                other = rng.choice(_STREAMS)[2]
                p[8:12] = rng.choice((0, 0xFFFFFFFF, ssrc ^ 1, other, rng.getrandbits(32))).to_bytes(4, "big")
            elif op == "padding-count":
                if body_end <= _header_end(p):
                    continue
                p[0] |= 0x20
                room = body_end - _header_end(p)
                p[body_end - 1] = rng.choice((0, 1, 4, 0xFF, room, room + 1)) & 0xFF
            elif op == "tag-flip":
                which = rng.randrange(3)
                if which == 0:
                    if not _flip(rng, p, body_end, len(p)):
                        continue
                elif which == 1:
                    p[body_end:] = bytes(len(p) - body_end)
                else:  # another packet's tag
                    q = rng.choice(packets)
                    p[body_end:] = q[max(0, len(q) - tag_len):]
            elif op == "tag-cut":
                if len(p) == 0:
                    continue
                del p[len(p) - rng.randint(1, min(len(p), tag_len + 2)):]
            elif op == "tag-extend":
                p += rng.choice((bytes(rng.randint(1, 16)), rng.randbytes(rng.randint(1, 16)),
                                 bytes(p[body_end:])))
            elif op == "payload-flip":
                if not _flip(rng, p, _header_end(p), body_end):
                    continue
            elif op == "replay":
                for _ in range(rng.choice((1, 1, 2, 5))):
                    packets.insert(rng.randrange(k + 1, len(packets) + 1), bytearray(p))
            elif op == "reorder":
                if len(packets) < 2:
                    continue
                if rng.random() < 0.5:
                    j = rng.randrange(len(packets))
                    packets[k], packets[j] = packets[j], packets[k]
                else:
                    rng.shuffle(packets)
            elif op == "drop":
                del packets[k]
            elif op == "truncate-packet":
                if not p:
                    continue
                del p[rng.randrange(len(p)):]
            elif op == "splice":
                _, others = self.parsed[rng.randrange(len(self.parsed))]
                if not others:
                    continue
                packets.insert(rng.randrange(len(packets) + 1), bytearray(rng.choice(others)))
            elif op == "many-packets":
                while len(packets) < rng.choice((MAX_PACKETS, MAX_PACKETS + 1, 80)):
                    packets.append(bytearray(rng.choice(packets)))
            elif op == "oversize":
                size = rng.choice((srtp.MAX_SRTP_PACKET, srtp.MAX_SRTP_PACKET + 1, rtp.MAX_PACKET + tag_len,
                                   rtp.MAX_PACKET + tag_len + 1, 0xFFFF))
                packets[k] = p[:body_end] + bytes(max(0, size - len(p))) + p[body_end:]
            elif op == "frame-length":
                n = len(p)
                lies[k] = rng.choice((0, 1, n - 1, n + 1, n + 4, 0xFFFF, 11, 12 + tag_len)) & 0xFFFF
            elif op == "suite":
                choice = rng.randrange(4)
                prefix = (b"", bytes((1 - code if code < 2 else 0,)), b"\x02", b"\xff")[choice]
            elif op == "garbage":
                junk = rng.choice((rng.randbytes(rng.randint(0, 40)), b"\x80\x00" + bytes(10 + tag_len),
                                   bytes(rng.randint(0, 16)), b"\xff" * rng.randint(1, 64)))
                if rng.random() < 0.5:
                    packets.insert(rng.randrange(len(packets) + 1), bytearray(junk))
                else:
                    tail += junk  # after the frames, unframed
            applied.append(op)
        parts = [prefix]
        for i, p in enumerate(packets):
            parts.append(lies.get(i, len(p) & 0xFFFF).to_bytes(2, "big") + p)
        data = b"".join(parts) + tail
        cuts, at = [0, len(prefix)], len(prefix)
        for part in parts[1:]:
            at += len(part)
            cuts.extend((at - len(part) + 2, at))  # after a length, after a packet
        data = finish_mutant(rng, data, cuts, "truncate-frame", applied)
        return si, data, tuple(applied)


# --------------------------------------------------------------------------- sdp mutation
def _b64(n: int, rng: random.Random) -> bytes:
    return base64.b64encode(rng.randbytes(n))


_KEY_SUFFIXES = (b"|2^31", b"|2^48", b"|2^99", b"|0", b"|1024", b"|1:4", b"|2^20|1:4", b"|1:200",
                 b"|1:0", b"|1:128", b"|2^20|1:4|x", b"|", b"||", b"|2^", b"|99999999999999999999999")
_SESSION_PARAMS = (b"", b" KDR=1", b" UNENCRYPTED_SRTP", b" UNAUTHENTICATED_SRTP", b" FEC_ORDER=FEC_SRTP",
                   b" WSH=64", b"  KDR=0", b" \x7f", b" " + b"P" * 600)
_SUITES = (b"AES_CM_128_HMAC_SHA1_80", b"AES_CM_128_HMAC_SHA1_32", b"AEAD_AES_256_GCM", b"AEAD_AES_128_GCM",
           b"F8_128_HMAC_SHA1_80", b"aes_cm_128_hmac_sha1_80", b"NULL_HMAC_SHA1_80", b"", b"AES-CM",
           b"AES_CM_128_HMAC_SHA1_80 AES_CM_128_HMAC_SHA1_32")
_TAGS = (b"0", b"1", b"2", b"3", b"01", b"0001", b"999999999", b"1000000000", b"-1", b"", b"x", b"4294967297",
         b"1 ")
_ADDRESSES = (b"IN IP4 lab.example", b"IN IP4 ::1", b"IN IP6 ::1", b"IN IP6 fe80::1%eth0",
              b"IN IP6 2001:db8::9", b"IN IP4 224.2.1.1/127", b"IN IP4 10.0.0.9/1/2", b"IN IP4 256.1.1.1",
              b"IN IP4 0.0.0.0", b"IN IP4 ", b"IN IP4", b"IN IP6 ::ffff:10.0.0.9", b"IN IP5 10.0.0.9",
              b"ATM NSAP 47.0005", b"IN  IP4 10.0.0.9", b"IN IP4 10.0.0.9 x", b"IN IP4 010.000.000.009",
              b"IN IP6 0000:0000:0000:0000:0000:ffff:255.255.255.255", b"IN IP4 10.0.0.1")
_PORTS = (b"0", b"1", b"65535", b"65536", b"99999", b"-1", b"20000/2", b"", b"000020000", b"0x4e20")
_PROFILES = (b"RTP/AVP", b"RTP/SAVP", b"RTP/SAVPF", b"UDP/TLS/RTP/SAVP", b"RTP/AVPF", b"rtp/savp", b"",
             b"RTP//SAVP", b"RTP/SAVP/", b"TCP/RTP/SAVP")
_FORMATS = (b"0", b"8", b"127", b"128", b"0 0", b"", b"255", b"a", b"0 8 18 101", b"00", b"-0",
            b" ".join(b"%d" % i for i in range(128)))
_POOL = (b"a=rtpmap:0 PCMU/8000", b"a=sendonly", b"a=recvonly", b"a=inactive", b"a=sendrecv", b"b=AS:64",
         b"i=info", b"k=clear:secret", b"a=ptime:20", b"t=0 0", b"o=- 1 1 IN IP4 10.0.0.9", b"s=x", b"v=0",
         b"m=video 0 RTP/AVP 31", b"m=audio 4000 RTP/AVP 0", b"a=fmtp:0 x", b"r=7d 1h 0 25h", b"z=0 0",
         b"e=x@example.com", b"u=http://example.com/", b"p=+1 555", b"c=IN IP4 10.0.0.9", b"a=",
         b"a=:x", b"a=crypto", b"a=crypto:", b"a=x-unknown:1")
_BAD_LINES = (b"x=1", b"Z=", b"1=2", b"=", b"a", b"aa=b", b"a =b", b" a=b", "\u00e9=x".encode(), b"A=b", b"")
_CONTROLS = (b"\x00", b"\x01", b"\x09", b"\x0b", b"\x0c", b"\x1f", b"\x7f", "\u0085".encode(),
             "\u2028".encode(), "\ufeff".encode(), b"\r")
_NOT_UTF8 = (b"\xff", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xfe\xff")


def _crypto_line(rng: random.Random, tag: bytes, suite: bytes, key: bytes) -> bytes:
    return b"a=crypto:" + tag + b" " + suite + b" inline:" + key + rng.choice(_SESSION_PARAMS[:3])


def _key_params(rng: random.Random, key: bytes) -> bytes:
    """Key-params built from ``key`` (the base64 key||salt of a seed) with one or two lies (module
    docstring): in the key itself, the ``inline:`` prefix, a lifetime or MKI, more key-params, or
    session parameters."""
    base, prefix, suffix, more, params = key, b"inline:", b"", b"", b""
    for _ in range(1 + (rng.random() < 0.25)):
        which = rng.randrange(5)
        if which == 0:
            base = rng.choice((key[:-1], key + b"A", key[:39] + b"=", _b64(33, rng), _b64(16, rng),
                               _b64(32, rng), key[:20] + b"*" + key[21:],
                               key.replace(b"+", b"-").replace(b"/", b"_"), key[:10] + b"=" + key[11:], b"",
                               b"A" * 40, key + key))
        elif which == 1:
            prefix = rng.choice((b"", b"INLINE:", b"inline:inline:", b"inline", b"inline: "))
        elif which == 2:
            suffix = rng.choice(_KEY_SUFFIXES)
        elif which == 3:
            more = rng.choice((b";inline:" + key, b";inline:" + _b64(30, rng) + b"|2^20", b";", b";x"))
        else:
            params = rng.choice(_SESSION_PARAMS)
    return prefix + base + suffix + more + params


class SdpMutator:
    """Mutants of the ``sdp`` seeds; ``mutate(rng)`` is deterministic in ``rng``."""

    OPS = ("line-drop", "line-duplicate", "line-swap", "line-insert", "unknown-type", "connection",
           "media-port", "media-profile", "media-format", "crypto-tag", "crypto-suite", "crypto-key",
           "crypto-many", "control-char", "line-ends", "non-utf8", "long-line", "many-lines", "direction",
           "media-section", "origin", "value-garbage")

    def __init__(self, fmt: str, seeds: tuple[bytes, ...], *, max_ops: int = 3) -> None:
        if fmt != "sdp":
            raise EncodeError(f"{fmt!r} is not the sdp format", path="format")
        self.fmt = fmt
        self.seeds = seeds
        self.max_ops = max(1, max_ops)
        keys = [line.partition(b"inline:")[2].split(b"|")[0].split(b" ")[0]
                for s in seeds for line in s.split(b"\r\n") if line.startswith(b"a=crypto:")]
        self.keys = keys or [base64.b64encode(bytes(30))]

    def _crypto_index(self, rng: random.Random, lines: list[bytes]) -> int:
        """A crypto line of ``lines`` (one is added after the m= line, or at the end, when none is)."""
        found = [i for i, line in enumerate(lines) if line.startswith(b"a=crypto:")]
        if found:
            return rng.choice(found)
        at = next((i + 1 for i, line in enumerate(lines) if line.startswith(b"m=")), len(lines))
        lines.insert(at, _crypto_line(rng, b"1", _SUITES[0], rng.choice(self.keys)))
        return at

    def mutate(self, rng: random.Random) -> tuple[int, bytes, tuple[str, ...]]:
        si = rng.randrange(len(self.seeds))
        lines = self.seeds[si].split(b"\r\n")
        if lines and lines[-1] == b"":
            lines.pop()
        ends: bytes | None = b"\r\n"
        final = True
        applied: list[str] = []
        n_ops = 1 + sum(rng.random() < 0.3 for _ in range(self.max_ops - 1))
        for _ in range(n_ops):
            op = rng.choice(self.OPS)
            if not lines and op not in ("line-insert", "unknown-type", "many-lines", "crypto-many"):
                continue
            k = rng.randrange(len(lines)) if lines else 0
            m_at = next((i for i, line in enumerate(lines) if line.startswith(b"m=")), None)
            if op == "line-drop":
                del lines[k]
            elif op == "line-duplicate":
                lines.insert(rng.randrange(len(lines) + 1), lines[k])
            elif op == "line-swap":
                if len(lines) < 2:
                    continue
                j = rng.randrange(len(lines))
                lines[k], lines[j] = lines[j], lines[k]
            elif op == "line-insert":
                lines.insert(rng.randrange(len(lines) + 1), rng.choice(_POOL))
            elif op == "unknown-type":
                bad = rng.choice(_BAD_LINES)
                if lines and rng.random() < 0.5:
                    lines[k] = bad
                else:
                    lines.insert(rng.randrange(len(lines) + 1), bad)
            elif op == "connection":
                c = b"c=" + rng.choice(_ADDRESSES)
                c_lines = [i for i, line in enumerate(lines) if line.startswith(b"c=")]
                if c_lines and rng.random() < 0.7:
                    lines[rng.choice(c_lines)] = c
                else:  # a second one, or one at media level
                    lines.insert(rng.randrange(len(lines) + 1) if m_at is None else m_at + 1, c)
            elif op in ("media-port", "media-profile", "media-format"):
                if m_at is None:
                    continue
                parts = lines[m_at][2:].split(b" ")
                while len(parts) < 4:
                    parts.append(b"0")
                if op == "media-port":
                    parts[1] = rng.choice(_PORTS)
                    if rng.random() < 0.2:
                        parts[0] = rng.choice((b"video", b"AUDIO", b"", b"audio audio"))
                elif op == "media-profile":
                    parts[2] = rng.choice(_PROFILES)
                else:
                    parts[3:] = [rng.choice(_FORMATS)]
                lines[m_at] = b"m=" + b" ".join(parts)
            elif op in ("crypto-tag", "crypto-suite", "crypto-key"):
                i = self._crypto_index(rng, lines)
                head, _, rest = lines[i].partition(b":")
                tag, _, rest = rest.partition(b" ")
                suite, _, key = rest.partition(b" ")
                if op == "crypto-tag":
                    tag = rng.choice(_TAGS)
                elif op == "crypto-suite":
                    suite = rng.choice(_SUITES)
                else:
                    seed_key = key.partition(b"inline:")[2].split(b"|")[0].split(b" ")[0] or self.keys[0]
                    key = _key_params(rng, seed_key)
                lines[i] = head + b":" + tag + b" " + suite + b" " + key
            elif op == "crypto-many":
                count = rng.choice((2, sdp.MAX_CRYPTO, sdp.MAX_CRYPTO + 1, 1000))
                unique = rng.random() < 0.7
                extra = [_crypto_line(rng, b"%d" % (t + 3 if unique else 1), rng.choice(_SUITES[:2]),
                                      rng.choice(self.keys)) for t in range(count)]
                at = len(lines) if m_at is None else m_at + 1
                lines[at:at] = extra
            elif op == "control-char":
                line = lines[k]
                cut = rng.randrange(len(line) + 1)
                lines[k] = line[:cut] + rng.choice(_CONTROLS) + line[cut:]
            elif op == "line-ends":
                which = rng.randrange(5)
                if which == 0:
                    ends = b"\n"
                elif which == 1:
                    ends = b"\r"
                elif which == 2:
                    ends = None  # each line its own
                elif which == 3:
                    lines.insert(rng.randrange(len(lines) + 1), b"")  # an empty line
                else:
                    final = False
            elif op == "non-utf8":
                line = lines[k]
                cut = rng.randrange(len(line) + 1)
                lines[k] = line[:cut] + rng.choice(_NOT_UTF8) + line[cut:]
            elif op == "long-line":
                size = rng.choice((sdp.MAX_LINE - 1, sdp.MAX_LINE, sdp.MAX_LINE + 1, 600, 5000))
                line = lines[k]
                lines[k] = line + b"A" * max(0, size - len(line))
            elif op == "many-lines":
                count = rng.choice((sdp.MAX_LINES - len(lines), sdp.MAX_LINES + 1 - len(lines), 1000))
                filler = rng.choice((b"a=x", b"a=sendrecv", b"b=AS:1", b"a=" + b"x" * 100))
                lines.extend([filler] * max(0, count))
            elif op == "direction":
                d = rng.choice((b"a=sendrecv", b"a=sendonly", b"a=recvonly", b"a=inactive", b"a=sendrecv:1",
                                b"a=SENDRECV"))
                lines.insert(rng.randrange(len(lines) + 1), d)
            elif op == "media-section":
                which = rng.randrange(4)
                section = rng.choice((b"m=video 5000 RTP/AVP 31", b"m=audio 6000 RTP/SAVP 0",
                                    b"m=image 0 udptl t38", b"m=audio 0 RTP/AVP 0"))
                if which == 0 and m_at is not None:
                    lines[m_at:m_at] = [section, b"c=IN IP4 10.0.0.8"]  # before the audio
                elif which == 1:
                    lines.extend([section, _crypto_line(rng, b"9", _SUITES[0], rng.choice(self.keys))])
                elif which == 2 and m_at is not None:  # the crypto lines moved to the session level
                    cryptos = [x for x in lines if x.startswith(b"a=crypto:")]
                    kept = [x for x in lines if not x.startswith(b"a=crypto:")]
                    m_kept = kept.index(lines[m_at])
                    lines = kept[:m_kept] + cryptos + kept[m_kept:]
                else:  # no media section at all
                    lines = [line for line in lines if not line.startswith(b"m=")]
            elif op == "origin":
                lies = (b"o=- 123456789012345678901 1 IN IP4 10.0.0.9", b"o=- 1 1 IN IP4 host.example",
                        b"o=- 1 1 IN IP7 10.0.0.9", b"o=- 1 1 IN IP4", b"o=", b"o=a b c d e f",
                        b"o=" + b"u" * 480 + b" 1 1 IN IP4 h", b"o=- -1 1 IN IP4 10.0.0.9",
                        "o=\u00e9 1 1 IN IP4 10.0.0.9".encode())
                o_lines = [i for i, line in enumerate(lines) if line.startswith(b"o=")]
                lie = rng.choice(lies)
                if o_lines:
                    lines[o_lines[0]] = lie
                else:
                    lines.insert(min(1, len(lines)), lie)
            elif op == "value-garbage":
                letter = lines[k][:2] if lines[k][1:2] == b"=" else b"a="
                lines[k] = letter + rng.choice((rng.randbytes(rng.randint(1, 12)), b" ", b"  ", b"\t",
                                                b"0 0 0 0 0", b"x" * rng.choice((1, 40, 511))))
            applied.append(op)
        if ends is None:
            data = b"".join(line + rng.choice((b"\r\n", b"\n", b"\r", b"\n\r")) for line in lines)
        else:
            data = ends.join(lines) + (ends if final and lines else b"")
        cuts = [0, *(i + 1 for i, c in enumerate(data) if c == 0x0A)]
        data = finish_mutant(rng, data, cuts, "truncate-line", applied)
        return si, data, tuple(applied)


# --------------------------------------------------------------------------- targets
class MediaAcceptanceError(AssertionError):
    """The phone or the lab's media resources accepted what the module's oracles say they must not."""


def _state(ctx: srtp.SrtpContext) -> dict[int, tuple[int, int]]:
    return {ssrc: (got.highest, got.window) for ssrc, got in ctx._received.items()}


def _srtp_target() -> Callable[[bytes], None]:
    known: dict[int, dict[bytes, bytes]] = {code: {} for code in range(len(SUITE_CODES))}
    for _, code, packets, plain in _srtp_streams():
        known[code].update(zip(packets, plain, strict=True))

    def run(data: bytes) -> None:
        if not data:
            raise DecodeError("no suite byte", fmt="srtp", path="suite", offset=0)
        code = data[0]
        if code >= len(SUITE_CODES):
            raise DecodeError(f"suite byte {code}, expected 0 (_80) or 1 (_32)", fmt="srtp", path="suite",
                              offset=0)
        ctx = srtp.SrtpContext(SUITE_CODES[code], *SRTP_KEYS[SUITE_CODES[code]])
        seeds = known[code]
        accepted: set[bytes] = set()
        refused: list[DecodeError] = []
        stop: DecodeError | None = None  # the framing ended the reading
        pos, n = 1, 0
        while pos < len(data):
            if n == MAX_PACKETS:
                stop = DecodeError(f"more than {MAX_PACKETS} packets", fmt="srtp", path="frame", offset=pos)
                break
            size = int.from_bytes(data[pos:pos + 2], "big")
            if pos + 2 > len(data) or pos + 2 + size > len(data):
                stop = DecodeError(f"frame of {size} bytes at {pos} runs past the input's {len(data)} bytes",
                                   fmt="srtp", path="frame", offset=pos)
                break
            packet = data[pos + 2:pos + 2 + size]
            pos, n = pos + 2 + size, n + 1
            before = _state(ctx)
            try:
                plain = ctx.unprotect(packet)
            except DecodeError as exc:
                if _state(ctx) != before:
                    raise MediaAcceptanceError(f"packet {n} was refused ({exc.path}: {exc.message}) but "
                                               f"changed the receiving state {before} -> {_state(ctx)}"
                                               ) from None
                refused.append(exc)
                continue
            if packet not in seeds:
                raise MediaAcceptanceError(f"packet {n} ({size} bytes) authenticated but is no packet the "
                                           f"key protected (forged or modified): {packet[:24].hex()}")
            if packet in accepted:
                raise MediaAcceptanceError(f"packet {n} authenticated again (a replay accepted): "
                                           f"{packet[:24].hex()}")
            if plain != seeds[packet]:
                raise MediaAcceptanceError(f"packet {n} decrypted to {plain[:24].hex()}..., not the RTP "
                                           f"packet it protects ({seeds[packet][:24].hex()}...)")
            accepted.add(packet)
        if n == 0 and stop is None:
            stop = DecodeError("no packet", fmt="srtp", path="frame", offset=1)
        first = refused[0] if refused else stop
        if first is not None:
            text = f"{len(refused)} of {n} packet(s) refused"
            text += f" (the first: {first.path}: {first.message})" if refused else ""
            text += f"; {stop.message}" if stop is not None else ""
            raise DecodeError(text, fmt="srtp", path=first.path or "frame", offset=first.offset)

    return run


def _key_of(c: sdp.Crypto) -> tuple[bytes, bytes]:
    """The master key and salt of an answer's crypto line, its whole key-params (lifetime, MKI) read."""
    return srtp.parse_inline_key("inline:" + "|".join(part for part in (c.key_params, c.lifetime, c.mki)
                                                      if part))


def _check_key(chosen: sdp.Crypto, what: str) -> None:
    """The key-params of a crypto line taken for SRTP parse to a 16-byte key and a 14-byte salt (a
    finding otherwise, ``what`` saying whose)."""
    try:
        key, salt = _key_of(chosen)
    except DecodeError as exc:
        raise MediaAcceptanceError(f"a key that does not parse ({exc.message}): {what}") from None
    if (len(key), len(salt)) != (srtp.MASTER_KEY_LEN, srtp.MASTER_SALT_LEN):
        raise MediaAcceptanceError(f"a key of {len(key)}+{len(salt)} bytes: {what}")


def _check_sdp_round_trip(offer: sdp.AudioOffer) -> None:
    try:
        rebuilt = sdp.build_sdp(offer)
    except EncodeError as exc:
        if exc.path == "sdp" or (exc.path or "").endswith("="):
            return  # the documented limits: a line or the whole over MAX_LINE / MAX_SDP once rebuilt
        raise MediaAcceptanceError(f"a parsed description does not build: {exc}") from None
    try:
        again = sdp.parse_sdp(rebuilt)
    except DecodeError as exc:
        raise MediaAcceptanceError(f"build_sdp(parse_sdp(b)) does not parse: {exc}") from None
    if again != offer:
        raise MediaAcceptanceError(f"parse_sdp(build_sdp(x)) != x: {again!r} != {offer!r}")


def _sdp_target(round_trip: bool) -> Callable[[bytes], None]:
    from phoneemu.lab.media_service import MediaResources
    from phoneemu.phone import media_rules
    from phoneemu.phone.events import Decision

    loop = asyncio.new_event_loop()
    phone_crypto = _phone_crypto()
    offered_pairs = {(c.tag, c.suite) for c in phone_crypto}
    srtp_rule = Decision(rule="G.14-offer-srtp", accepted=True, reason="encrypted signalling", file="",
                         kind="media")
    rtp_rule = Decision(rule="G.14-rtp-not-encrypted-mode", accepted=False, reason="RTP", file="",
                        kind="media")
    headers = (("Via", f"SIP/2.0/TLS {_PHONE}:5061;branch=z9hG4bK0001"), ("Max-Forwards", "70"),
               ("From", f"<sip:{_DEVICE}@{_LAB}>;tag=a1b2"), ("To", f"<sip:moh@{_LAB}>"),
               ("Call-ID", f"fuzz0001@{_DEVICE}"), ("CSeq", "1 INVITE"),
               ("Contact", f"<sip:{_DEVICE}@{_PHONE}:5061;transport=tls>"),
               ("Content-Type", "application/sdp"))

    def check_answer(answer: sdp.AudioOffer) -> None:
        for offered, rule in ((phone_crypto, srtp_rule), ((), rtp_rule)):
            d, chosen = media_rules.decide_media_answer(offered, answer, offer_rule=rule)
            if d.rule != "G.14-srtp" and chosen is None:
                continue
            what = (f"{d.rule} (crypto {chosen!r}) for the answer {answer!r} to the "
                    f"{'SAVP' if offered else 'AVP'} offer")
            if not offered:
                raise MediaAcceptanceError(f"SRTP taken on an RTP offer: {what}")
            if d.rule != "G.14-srtp" or answer.profile != SAVP or len(answer.crypto) != 1 \
                    or chosen != answer.crypto[0]:
                raise MediaAcceptanceError(f"not one SAVP crypto line: {what}")
            if (chosen.tag, chosen.suite) not in offered_pairs:
                raise MediaAcceptanceError(f"tag and suite not offered: {what}")
            _check_key(chosen, what)

    def check_lab(data: bytes, offer: sdp.AudioOffer | None) -> None:
        media = MediaResources(call_timeout=5.0)
        msg = sip.SipMessage(method="INVITE", uri=f"sip:moh@{_LAB}", headers=headers, body=data)
        try:
            raw = loop.run_until_complete(media.invite(msg, peer_host=_PHONE, local_host="127.0.0.1",
                                                       over_tls=True, device=_DEVICE))
        except DecodeError as exc:
            raise MediaAcceptanceError(f"the lab's media resources raised on an INVITE: {exc!r}") from None
        finally:
            media.close()
            loop.run_until_complete(asyncio.sleep(0))  # the closed calls' UDP sockets are released
        try:
            resp = sip.parse_message(raw)
        except DecodeError as exc:
            raise MediaAcceptanceError(f"the lab's response to an INVITE does not parse: {exc}") from None
        if resp.status not in (200, 400, 488, 503):
            raise MediaAcceptanceError(f"the lab answered an INVITE {resp.status} {resp.reason}")
        if resp.status != 200:
            return
        try:
            answer = sdp.parse_sdp(resp.body)
        except DecodeError as exc:
            raise MediaAcceptanceError(f"the lab's 200 carries SDP that does not parse: {exc}") from None
        if offer is None:
            raise MediaAcceptanceError("the lab answered 200 to an offer that does not parse")
        d, _ = media_rules.decide_media_answer(offer.crypto, answer,
                                               offer_rule=srtp_rule if offer.crypto else rtp_rule)
        if d.rule == "G.14-answer-refused":
            raise MediaAcceptanceError(f"the lab's answer is one the offering phone refuses: {d.reason}")
        if answer.profile == SAVP:  # SRTP only with a key of the phone's that the lab can use
            mine = next((c for c in offer.crypto if answer.crypto and c.tag == answer.crypto[0].tag), None)
            try:
                if mine is None:
                    raise DecodeError("no such tag offered", fmt="sdp", path="a=crypto")
                _key_of(mine)
            except DecodeError as exc:
                raise MediaAcceptanceError(f"the lab answered SRTP to the offer's crypto line {mine!r}, "
                                           f"whose key-params it cannot use: {exc.message}") from None

    def check_called(offer: sdp.AudioOffer) -> None:
        """The input as the offer a called phone gets (:func:`media_rules.decide_incoming`): SRTP only on a
        usable crypto line of the offer, of a suite the phone has, and never when its own rule says RTP."""
        for own in (srtp_rule, rtp_rule):
            d, chosen = media_rules.decide_incoming(offer, own=own, suites=SRTP_PREFERENCE)
            if d.rule != "G.14-srtp" and chosen is None:
                continue
            what = f"{d.rule} (crypto {chosen!r}) for the offer {offer!r}"
            if not own.accepted:
                raise MediaAcceptanceError(f"SRTP answered by a phone whose rule says RTP: {what}")
            if chosen is None or d.rule != "G.14-srtp" or offer.profile != SAVP \
                    or chosen not in offer.crypto or chosen.suite not in SRTP_PREFERENCE or chosen.mki:
                raise MediaAcceptanceError(f"not a usable crypto line of the offer: {what}")
            _check_key(chosen, what)

    def run(data: bytes) -> None:
        offer: sdp.AudioOffer | None = None
        rejected: DecodeError | None = None
        try:
            offer = sdp.parse_sdp(data)
        except DecodeError as exc:
            rejected = exc
        if offer is not None:
            if round_trip:
                _check_sdp_round_trip(offer)
            check_answer(offer)
            check_called(offer)
        check_lab(data, offer)
        if rejected is not None:
            raise rejected

    weakref.finalize(run, loop.close)  # one loop for every input, closed with the target
    return run


def media_callable(fmt: str, *, round_trip: bool = True) -> Callable[[bytes], None]:
    """What our phone (and, for ``sdp``, the lab's media resources) does with one input of ``fmt``."""
    if fmt == "srtp":
        return _srtp_target()
    if fmt == "sdp":
        return _sdp_target(round_trip)
    raise EncodeError(f"no phoneemu target for format {fmt!r}", path="format")
