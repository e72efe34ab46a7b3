"""Whether a client is still taking what a lab TCP/TLS server sent it: one rule for the HTTP file server
(a response's drain, what is unsent at the close), the SIP registrar (an answer's drain, the close) and
:class:`phoneemu.net.tls.TlsServer`'s close (TVS, CAPF, HTTPS, SIP over TLS).

Rules (ours):

* While some of what was written waits unsent, the client must take at least a floor of it (all of it,
  when fewer) within each wait (the server's idle or read timeout), else the server gives up on it and
  aborts the connection: one that never reads, or takes a byte now and then, cannot hold a connection and
  its descriptor for ever; one reading slowly but steadily is served however long the whole takes (a
  phone fetching a firmware load over a slow WAN link, spec §D, §H.1). The floor is the caller's
  (:data:`TAKEN_PER_IDLE` unless it says otherwise).
* Taken is what the client's TCP acknowledged: the transport's write buffer plus the kernel's
  unacknowledged send queue (``SIOCOUTQ``, Linux; elsewhere, or the socket gone, the buffer alone)
  shrinking. The buffer alone is not enough: Linux reports a socket writable only once about a third of
  its send buffer is free, so with a moderate send buffer the transport's buffer can stay unchanged
  longer than a wait while the client reads steadily (was: such a reader was cut).
* What was taken is looked at :data:`CHECKS_PER_WAIT` times a wait, over the last wait (a sliding
  window, not fixed windows): a client that stops taking is cut within about 1.25 waits of its last
  bytes. The wait is bounded in count: each wait takes at least the floor, or ends.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import sys
import termios
from collections.abc import Awaitable

__all__ = ["CHECKS_PER_WAIT", "TAKEN_PER_IDLE", "unsent", "until_taken"]

#: bytes of what waits unsent a client must take within each wait unless its server says otherwise
#: (module rules: the floor; the HTTP server's, 1 KiB an ``idle_timeout``)
TAKEN_PER_IDLE = 1024
#: what the client took is looked at this many times a wait (module rules)
CHECKS_PER_WAIT = 4
_TIOCOUTQ = getattr(termios, "TIOCOUTQ", None) if sys.platform.startswith("linux") else None  # = SIOCOUTQ


async def until_taken(writer: asyncio.StreamWriter, sent: Awaitable[None], wait: float, *,
                      floor: int = TAKEN_PER_IDLE) -> int | None:
    """Await ``sent`` (a drain, or the close) while the client takes what waits unsent (:func:`unsent`):
    at least ``floor`` bytes of it (all, when fewer) within each ``wait`` seconds, looked at
    :data:`CHECKS_PER_WAIT` times a ``wait`` (module rules). None once ``sent`` is done (its error, a
    reset, raised), else the bytes still unsent when the client stopped taking them. What waits unsent
    is taken to only shrink meanwhile: bytes written by another task count against the client.
    Given up on (a cut, or cancelled), ``sent`` goes on until the connection ends: a close's wait is the
    writer's own future, and cancelling it made every later ``wait_closed`` raise CancelledError."""
    waiting = asyncio.shield(sent)  # cancelled below: the wait, not ``sent``
    try:
        marks = collections.deque([unsent(writer)], maxlen=CHECKS_PER_WAIT + 1)  # over the last wait
        for _ in range((marks[0] // floor + 2) * CHECKS_PER_WAIT):  # bounded: each wait takes the floor,
            done, _ = await asyncio.wait((waiting,), timeout=wait / CHECKS_PER_WAIT)  # or ends
            if done:
                waiting.result()
                return None
            marks.append(unsent(writer))
            if len(marks) == marks.maxlen and marks[0] - marks[-1] < min(floor, marks[0]):
                return marks[-1]
        return marks[-1]  # (not reached unless written to meanwhile: all taken, ``sent`` is done)
    finally:
        waiting.cancel()


def unsent(writer: asyncio.StreamWriter) -> int:
    """Bytes written to the connection its client's TCP has not acknowledged: the transport's buffer plus
    the kernel's send queue (``SIOCOUTQ``: Linux; elsewhere, or the socket gone, the buffer alone)."""
    queued = 0
    sock = writer.get_extra_info("socket")
    if _TIOCOUTQ is not None and sock is not None and sock.fileno() >= 0:
        with contextlib.suppress(OSError):
            answer = fcntl.ioctl(sock.fileno(), _TIOCOUTQ, bytes(4))
            queued = int.from_bytes(answer, sys.byteorder, signed=True)
    return writer.transport.get_write_buffer_size() + max(queued, 0)
