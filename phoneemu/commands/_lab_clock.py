"""The phone's clock of ``boot --lab DIR`` and ``fleet boot --lab DIR`` without ``--now``: the lab's.

Rule (ours; the lab's clock is ours, :mod:`phoneemu.lab.cluster`): the lab issues each LSC from its clock
for 365 days (spec §F.9) and checks certificates against it, so a phone of the lab runs on that clock, as a
real phone takes its time from its cluster. A seeded lab (``lab init --seed``) runs on its own clock, its
epoch moved only by ``lab clock --advance``; an unseeded one follows the real time, never behind its clock
(as the lab's operations date themselves: a ``lab clock --advance`` holds until the real time passes it).
The lab's clock is read once, when the boot starts (under the lab's read lock); the phone's clock then
advances with the real time elapsed: it is the real time plus a fixed offset, the same for every phone and
every shard of a fleet. Was: the real time, so every CAPF install on a seeded lab failed once the real time
passed its LSCs' end (``it expired at 2027-01-01``), and at once after a ``lab clock --advance``.
Without ``--lab`` (``--tftp`` alone), the real time; ``--now UNIX`` sets a fixed clock instead.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

__all__ = ["SAID_BEYOND_S", "clock_doc", "clock_line", "lab_clock_offset", "lab_now"]

#: the phone's clock is said on stderr only when it is more than this many seconds off the real time
SAID_BEYOND_S = 60


def lab_now(lab: Path, real: float) -> int:
    """The lab's "now" at the real time ``real`` (Unix seconds: :meth:`~phoneemu.lab.state.ClusterState.
    now_at`, the rule its operations date themselves by)."""
    from phoneemu.lab.state import load_state

    return load_state(lab).now_at(real)


def lab_clock_offset(lab: Path, real: float) -> int:
    """Seconds the phone's clock is ahead of the real time ``real`` (negative: behind) so that it is the lab's
    (:func:`lab_now`) at ``real`` and advances with the real time after."""
    return lab_now(lab, real) - int(real)


def utc_text(unix: int) -> str:
    """``unix`` as ``2026-01-01 00:00:12Z``."""
    return dt.datetime.fromtimestamp(unix, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def clock_line(offset: int, real: float) -> str | None:
    """What is said on stderr of a phone clock that is the lab's, ``offset`` seconds off the real time
    ``real``: once, and only beyond :data:`SAID_BEYOND_S` (None: within it, nothing said)."""
    if abs(offset) <= SAID_BEYOND_S:
        return None
    return f"phone clock: the lab's, {utc_text(int(real) + offset)} (--now UNIX sets another)"


def clock_doc(source: str, start: int) -> dict[str, Any]:
    """The JSON of the phone's clock: its ``source`` (``lab``, ``--now`` or ``real``) and where it started
    (Unix seconds and UTC text)."""
    return {"source": source, "start": start, "start_utc": utc_text(start)}
