"""Sans-I/O protocol codecs and state machines: TVS (spec §E), CAPF (spec §F), SIP (§G.13) and a call's
SDP, RTP and SRTP suite negotiation (§G.14).

Nothing here touches sockets, TLS, event loops or clocks; the I/O shell in ``phoneemu.net`` and
``phoneemu.lab`` feeds received bytes in and sends the bytes these objects return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from phoneemu.lazy_exports import lazy_exports

if TYPE_CHECKING:  # imported when first used (phoneemu.lazy_exports: start-up time)
    from phoneemu.protocols import capf, tvs

__all__ = ["capf", "tvs"]

_HOME = {"capf": "capf", "tvs": "tvs"}
if not TYPE_CHECKING:  # mypy sees the imports above, and no __getattr__ making every other name Any
    __getattr__, __dir__ = lazy_exports(__name__, _HOME)
