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

__all__ = ["AVP", "SAVP", "SRTP_PREFERENCE", "negotiate_suite"]

#: the SDP media profiles of RTP (RFC 3551) and SRTP (RFC 3711)
AVP = "RTP/AVP"
SAVP = "RTP/SAVP"
#: The §G.14 preference: the 80-bit authentication tag first (IPVMS gives it precedence).
SRTP_PREFERENCE = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")


def negotiate_suite(offered: tuple[str, ...], supported: tuple[str, ...]) -> str | None:
    """The §G.14 table: the suite both sides support, the 80-bit tag first; None = RTP."""
    return next((s for s in SRTP_PREFERENCE if s in offered and s in supported), None)
