"""Sans-I/O protocol codecs and state machines: TVS (spec §E), CAPF (spec §F), SIP (§G.13) and a call's
SDP, RTP and SRTP suite negotiation (§G.14).

Nothing here touches sockets, TLS, event loops or clocks; the I/O shell in ``phoneemu.net`` and
``phoneemu.lab`` feeds received bytes in and sends the bytes these objects return.
"""

from __future__ import annotations

from phoneemu.protocols import capf, tvs

__all__ = ["capf", "tvs"]
