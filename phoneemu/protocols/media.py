"""The §G.14 SRTP cipher negotiation table, shared by whoever answers a call's offer and the phone.

| Capabilities offered | Negotiated |
|---|---|
| AES_CM_128_HMAC_SHA1_32 and AES_CM_128_HMAC_SHA1_80 | AES_CM_128_HMAC_SHA1_80 |
| only AES_CM_128_HMAC_SHA1_32 | AES_CM_128_HMAC_SHA1_32 |
| only AES_CM_128_HMAC_SHA1_80 | AES_CM_128_HMAC_SHA1_80 |
| neither | RTP |

(spec §G.14, seed "AES 80-Bit Authentication Support"). CUCM prefers AEAD_AES_256_GCM /
AEAD_AES_128_GCM when offered, but Cisco phones do not implement them, so they never appear here.
"""

from __future__ import annotations

from phoneemu.crypto import srtp
from phoneemu.errors import DecodeError
from phoneemu.protocols.sdp import Crypto

__all__ = ["AVP", "DEFAULT_PACKETS", "MAX_PACKETS", "MEDIA_HEADER", "PACKETS_HEADER", "SAVP",
           "SRTP_PREFERENCE", "negotiate_suite", "packets_asked", "pick_offered"]

#: the SDP media profiles of RTP (RFC 3551) and SRTP (RFC 3711)
AVP = "RTP/AVP"
SAVP = "RTP/SAVP"
#: The §G.14 preference: the 80-bit authentication tag first (IPVMS gives it precedence).
SRTP_PREFERENCE = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")


#: how many 20 ms media packets a call asks the far end to send (ours: an emulated call is that long)
PACKETS_HEADER = "X-Phoneemu-Packets"
#: what the far end counted of the caller's packets, in its 200 to the BYE (ours)
MEDIA_HEADER = "X-Phoneemu-Media"
DEFAULT_PACKETS = 10
MAX_PACKETS = 1000


def packets_asked(value: str | None) -> int:
    """The packets ``PACKETS_HEADER`` asks for: 1..MAX_PACKETS, DEFAULT_PACKETS when absent or not a
    number (ASCII digits only; a value that is not text is none: was AttributeError, or bytes read)."""
    text = value.strip() if isinstance(value, str) else ""
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        return DEFAULT_PACKETS
    return max(1, min(MAX_PACKETS, int(text)))


def negotiate_suite(offered: tuple[str, ...], supported: tuple[str, ...]) -> str | None:
    """The §G.14 table: the suite both sides support, the 80-bit tag first; None = RTP."""
    return next((s for s in SRTP_PREFERENCE if s in offered and s in supported), None)


def _usable(line: Crypto) -> bool:
    """An offered line whose key the answerer can use: no MKI (SRTP here reads none), a key info of a
    16-byte key and a 14-byte salt."""
    if line.mki:
        return False
    try:
        srtp.parse_inline_key(line.key_params)
    except DecodeError:
        return False
    return True


def pick_offered(offered: tuple[Crypto, ...], supported: tuple[str, ...]) -> Crypto | None:
    """The offered ``a=crypto`` line an answerer supporting ``supported`` answers (RFC 4568 §7.1.2): among
    the usable lines, the suite of the §G.14 table (:func:`negotiate_suite`), its first line; None: RTP."""
    usable = tuple(c for c in offered if _usable(c))
    suite = negotiate_suite(tuple(c.suite for c in usable), supported)
    return next((c for c in usable if c.suite == suite), None)
