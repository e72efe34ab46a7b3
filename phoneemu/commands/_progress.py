"""A count of phones done on stderr for the offline fleet commands (``predict --fleet-flash``,
``replay --all``): a large fleet takes minutes (a few ms a phone)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

__all__ = ["progress_line"]


def progress_line(verb: str) -> Callable[[int, int], None] | None:
    """``<verb> N/M`` on stderr, at most 4 times a second, when stderr is a terminal (else None)."""
    if not sys.stderr.isatty():
        return None
    last = [0.0]

    def show(done: int, total: int) -> None:
        t = time.monotonic()
        if done == total or t - last[0] >= 0.25:
            last[0] = t
            end = "\n" if done == total else ""
            print(f"\r  {verb} {done}/{total}", end=end, file=sys.stderr, flush=True)

    return show
