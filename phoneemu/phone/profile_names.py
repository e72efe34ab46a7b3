"""The names of the phone model profiles, as ``--profile`` lists them (``cp-8861``, ...).

Light on purpose: it imports nothing, so that building the command line (every ``phoneemu`` process,
``--help`` included) does not import the profiles, their hash algorithms and cryptography to list
their names (start-up time, ours). The profiles themselves are :data:`phoneemu.phone.profile.PROFILES`,
keyed by these names in this order (tests/unit/test_cli_startup.py checks they agree).
"""

from __future__ import annotations

__all__ = ["PROFILE_NAMES"]

PROFILE_NAMES = ("cp-8861", "cp-7962", "cp-7940", "cp-7942-symmetric")
