"""The protocols' numbers that the commands' options show as defaults: SIP's ports, CAPF's bound.

Light on purpose: it imports nothing, so that building the command line (every ``phoneemu`` process,
``--help`` included) does not import the SIP and CAPF codecs, and with CAPF cryptography, to show a
default (start-up time, ours). Each is re-exported by its protocol's module (:mod:`.sip`, :mod:`.capf`).
"""

from __future__ import annotations

__all__ = ["MAX_IN_PROGRESS", "SIPS_PORT", "SIP_PORT"]

#: CUCM's SIP line ports: TCP (sipPort) and TLS (securedSipPort)
SIP_PORT = 5060
SIPS_PORT = 5061
#: Most REQUEST_IN_PROGRESS frames a CAPF server accepts in one session (ours: beyond, a flood; §F.6)
MAX_IN_PROGRESS = 256
