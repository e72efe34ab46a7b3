"""Live progress line of a fleet run: booted, failed, rate (issue #6).

Rules: on a terminal one line is rewritten in place (``\\r``) at most every ``interval`` seconds; on
anything else (a pipe, CI logs) a plain line is written at most every ``log_interval`` seconds, so a
40,000-phone run prints a handful of lines, not thousands, each said by ``said_by`` (the command as
typed, ``phoneemu fleet boot: booted ...``: :mod:`phoneemu.cli` rules, ours; the redrawn terminal line
is bare). The line of the last phone done is always written, once (several shards may report that
count). :meth:`Progress.close` ends the line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import TextIO

__all__ = ["Progress", "progress_text"]


def progress_text(done: int, booted: int, total: int, elapsed_s: float,
                  failing: Mapping[str, int] | None = None, *, pausing: int = 0, capf_failed: int = 0) -> str:
    """``booted 1200/40000 failed 3 (3% done) 1,850/s 0.6s`` — the booted whose CAPF operation failed said
    as the summary's first line says them, ``booted 1200/40000 (2 of them CAPF failed) failed 3 ...`` (was
    counted as booted alone) —, then the most common failure so far
    (``; most failed: G.3.4-tvs-unreachable 3``): why phones fail shows while the storm runs, not only
    in the summary (a wrong --tftp address, a TVS outage); then the phones waiting to retry CAPF
    (``; 120 pausing before a CAPF retry``: a CAPF outage, not a hung run)."""
    failed = done - booted
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    pct = 100.0 * done / total if total else 100.0
    capf = f" ({capf_failed} of them CAPF failed)" if capf_failed else ""
    text = (f"booted {booted}/{total}{capf} failed {failed} ({pct:.0f}% done) {rate:,.0f}/s "
            f"{elapsed_s:.1f}s")
    if failed and failing:
        rule, count = max(failing.items(), key=lambda item: item[1])
        text += f"; most failed: {rule} {count}"
    if pausing:
        text += f"; {pausing} pausing before a CAPF retry"
    return text


class Progress:
    """A :data:`phoneemu.fleet.shard.ProgressFn` that writes to ``stream`` (stderr by default); a plain
    line starts with ``said_by: `` (none when ``said_by`` is empty; module docstring)."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = 0.2, log_interval: float = 5.0,
                 enabled: bool = True, said_by: str = "") -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.prefix = f"{said_by}: " if said_by else ""
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if self.tty else log_interval
        self.enabled = enabled
        self._last = float("-inf")
        self._open = False
        self._final = False  # the line of the last phone done was written

    def __call__(self, done: int, booted: int, total: int, elapsed_s: float, *,
                 failing: Mapping[str, int] | None = None, pausing: int = 0, capf_failed: int = 0) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done >= total:
            if self._final:
                return
            self._final = True
        elif now - self._last < self.interval:
            return
        self._last = now
        text = progress_text(done, booted, total, elapsed_s, failing, pausing=pausing,
                             capf_failed=capf_failed)
        if self.tty:
            self.stream.write("\r" + text + "\x1b[K")
            self._open = True
        else:
            self.stream.write(self.prefix + text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
