"""The time limits and bounds of ``run``, ``predict`` and ``replay`` that their options show.

Light on purpose: it imports nothing, so that building the command line (every ``phoneemu`` process,
``--help`` included) does not import the runner, the prediction or the capture reader to show a
default (start-up time, ours). Each constant is re-exported from the module whose rule it bounds.
"""

from __future__ import annotations

__all__ = ["DEFAULT_TIMEOUT_S", "GRACE_S", "MAX_FLEET", "MAX_MEMORY"]

#: ``run --timeout`` default (seconds): far above the slowest catalogue scenario (about 1 s).
#: (:mod:`phoneemu.scenario.deadline`)
DEFAULT_TIMEOUT_S = 300.0
#: Seconds after the limit before the signal (then, twice this, the watchdog or the parent's kill).
#: (:mod:`phoneemu.scenario.deadline`)
GRACE_S = 10.0
#: ``predict --fleet-flash``: at most this many entries in the folder (each a phone's flash).
#: (:mod:`phoneemu.scenario.predict`)
MAX_FLEET = 100_000
MAX_MEMORY = 256 * 1024 * 1024
"""Bytes held by all open flows and kept downloads of a capture's replay together (the rules of
:mod:`phoneemu.scenario._capture_flows`, "Overall budget"); ``replay --max-memory``'s default."""
