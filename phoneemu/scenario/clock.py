"""The scenario clock: one notion of "now" shared by the lab clusters and the phones.

It starts at the real time (or a fixed epoch for reproducible runs) and only moves when
the scenario says ``clock: {advance: ...}`` — so certificate expiry and TVS cache TTLs can
be exercised without waiting.
"""

from __future__ import annotations

import datetime as dt

from phoneemu.values import check_time

__all__ = ["ScenarioClock"]


class ScenarioClock:
    __slots__ = ("_now",)

    def __init__(self, start: int) -> None:
        self._now = start

    def __call__(self) -> int:
        """Unix seconds now."""
        return self._now

    def advance(self, seconds: int) -> None:
        """Move forward; PhoneEmuError if the clock would leave 1970..9000 (:mod:`phoneemu.values`)."""
        check_time(self._now + seconds, "clock.advance")
        self._now += seconds

    def datetime(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._now, dt.UTC)
