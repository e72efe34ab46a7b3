"""The lab TFTP server's retry timer and the client pool's quarantine, as ``fleet boot``'s options show them.

Light on purpose: it imports nothing, so that building the command line (every ``phoneemu`` process,
``--help`` included) does not import the TFTP client, its sockets and asyncio to show a default (start-up
time, ours). :mod:`phoneemu.net.tftp_server` re-exports the timer, :mod:`phoneemu.net.tftp_client` the
quarantine (its module docstring gives the rules).
"""

from __future__ import annotations

__all__ = ["DEFAULT_RETRIES", "DEFAULT_TIMEOUT", "MAX_QUARANTINE", "QUARANTINE_S"]

DEFAULT_TIMEOUT = 1.0  # seconds without an ACK before the last DATA is sent again
DEFAULT_RETRIES = 5

#: seconds a socket that is not reused stays open, muted, before it is closed (tftp_client's docstring): the
#: lab server's retry budget — no packet of a transfer after ``DEFAULT_TIMEOUT * (DEFAULT_RETRIES + 1)``
#: without an ACK (:mod:`phoneemu.net.tftp_server`; spec §H.2 gives no TFTP timer: our convention)
QUARANTINE_S = DEFAULT_TIMEOUT * (DEFAULT_RETRIES + 1)

#: sockets at most held in quarantine by one pool; past it the one held longest is closed early
MAX_QUARANTINE = 1024
