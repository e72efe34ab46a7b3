"""One log line per event, whatever a client sent: the lab servers' log is safe to read and to parse.

Rules (ours):

* What a client chooses — a TFTP file name, an HTTP path, a TVS or CAPF device name, a SIP header — is
  any bytes it sent. A newline in it would forge a log line of its own (``11:30:00 tftp: ... ok``), an
  escape sequence would drive the reader's terminal. :func:`loggable` escapes every character
  ``str.isprintable`` refuses (``\\n``, ``\\x1b``, ``\\u2028``), letters of any script stay as they are.
* :class:`OneLineFormatter` applies it to every record's message where ``lab serve`` writes its log, so
  no service has to remember to; a traceback a record carries keeps its lines (ours to write, not the
  client's).
"""

from __future__ import annotations

import logging

__all__ = ["OneLineFormatter", "loggable"]


def loggable(text: str, limit: int | None = None) -> str:
    """``text`` on one line, non-printable characters escaped; cut to its first ``limit`` characters
    (when given; before the escaping, so that no escape is cut in two) with the full length said."""
    cut = text if limit is None or len(text) <= limit else text[:limit]
    safe = cut if cut.isprintable() else "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in cut)
    return safe if cut is text else f"{safe}... ({len(text)} characters)"


class OneLineFormatter(logging.Formatter):
    """A :class:`logging.Formatter` whose records' messages are :func:`loggable` (module rules)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = loggable(record.message)
        return super().formatMessage(record)
