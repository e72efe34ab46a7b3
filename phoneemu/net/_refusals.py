"""Connections a server refuses at its cap, said at most once per interval with their exact count.

Rules (ours):

* A server at its connection cap refuses each further connection (:class:`phoneemu.net.tls.TlsServer`
  closes it, :class:`phoneemu.net.http.HttpServer` answers 503). One log line per refusal let a 30 s
  connection flood on CAPF write 275,732 lines (38 MB): a flood filled the disk the log is on.
* :class:`RefusalLog` says the first refusal after a quiet time at once, with its peer
  (``capf: refused a connection from 10.0.0.7:51234: pool full (1024 open, max_connections 1024)``), then
  the refusals of each following ``interval`` (1 s) in one line with their count
  (``capf: refused 12,345 connections in the last 1.0 s: pool full (1024 open, max_connections 1024)``,
  the reason as it was at the last of them). An interval with none ends the flood: the next refusal is
  said at once again.
* Nothing is lost: the counts of the lines add up to every refusal (``total``, exact); the last, partial
  interval is said when its timer runs out (the flood is over) or when the server closes (:meth:`flush`).
* Every call is made on the server's event loop (its accept callbacks): the timer is that loop's.
"""

from __future__ import annotations

import asyncio
import logging

__all__ = ["RefusalLog"]

#: seconds between two lines of one server's refusals (module rules)
REFUSAL_LOG_INTERVAL = 1.0


class RefusalLog:
    """The log lines of one server's refused connections (module rules): ``refused(peer, why)`` for each,
    ``flush()`` when the server closes. ``total`` counts them all."""

    __slots__ = ("_pending", "_since", "_timer", "_why", "interval", "level", "logger", "name", "total")

    def __init__(self, logger: logging.Logger, name: str, *, interval: float = REFUSAL_LOG_INTERVAL,
                 level: int = logging.WARNING) -> None:
        self.logger = logger
        self.name = name
        self.interval = interval
        self.level = level
        self.total = 0
        self._pending = 0  # refused since the last line
        self._why = ""  # the reason of the last of them
        self._since = 0.0  # the loop time the current interval started
        self._timer: asyncio.TimerHandle | None = None

    def refused(self, peer: str, why: str) -> None:
        """One more refused connection from ``peer`` (``host:port``): said at once when none was in the
        last interval, else counted for the interval's line."""
        self.total += 1
        if self._timer is None:
            self.logger.log(self.level, "%s: refused a connection from %s: %s", self.name, peer, why)
            self._start_interval()
            return
        self._pending += 1
        self._why = why

    def flush(self) -> None:
        """Say what the current interval has counted so far (the server closes): nothing is lost."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            self._say()

    def _start_interval(self) -> None:
        loop = asyncio.get_running_loop()
        self._since = loop.time()
        self._timer = loop.call_later(self.interval, self._interval_over)

    def _interval_over(self) -> None:
        """An interval's end: its count said and another begun, or, with none refused in it, quiet again."""
        self._timer = None
        if self._pending:
            self._say()
            self._start_interval()

    def _say(self) -> None:
        count, self._pending = self._pending, 0
        elapsed = asyncio.get_running_loop().time() - self._since
        noun = "connection" if count == 1 else "connections"
        self.logger.log(self.level, "%s: refused %s %s in the last %.1f s: %s", self.name, f"{count:,}",
                        noun, elapsed, self._why)
