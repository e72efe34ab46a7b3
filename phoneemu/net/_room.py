"""Room under a connection flood: which connection a full lab server closes for a newcomer (ours).

One rule for the lab's loop TVS (:class:`phoneemu.lab.tvs_loop.LoopTvsServer`) and :class:`phoneemu.net.tls.
TlsServer` (CAPF, HTTPS, the SIP-over-TLS registrars, the asyncio TVS):

* A connection is *unasked* until it has made its first step — the loop TVS: a complete TVS request;
  TlsServer: its TLS handshake finished (what the server itself sees; a client that completed a handshake
  is not silent by this rule, whatever it does next). An asked connection is never closed for room.
* When the server is full and a connection waits, it may close the unasked connection whose client has
  been *silent* longest: nothing from it for ``grace`` seconds (1 s by default, :data:`DEFAULT_GRACE`)
  since it connected or since its last bytes, and nothing of it waiting unread in the kernel (a peek: the
  loop, busy, has not read what the client sent — that client is heard from now and the choice made
  again, at most :data:`PEEKS_PER_CHOICE` times). It is taken from the address holding the most unasked
  connections (of those that have one past its grace), so silent connections from one host give way
  before another host's; of two alike, the one silent longest. Asked connections do not count there: a
  fleet's address holding thousands of served sessions (CAPF, SIP registrations) does not give way before
  a smaller flood (was: it did, its phones slow in their handshake closed before the flood's). With none
  past its grace there is none to close: the server does as it did without this rule (the loop TVS
  waits, TlsServer refuses the newcomer).
* No per-address cap: a fleet boots from one address, and a boot storm's phones each send their next
  flight within the grace however long a loaded machine makes the whole handshake.
* Bookkeeping is O(1) per connection and read: per address a count and the unasked connections in the
  order they were last heard from (a dict keeps insertion order; one heard from is moved to the end); an
  address leaves with its last connection. A choice reads each address once (at most one per open
  connection), again for each candidate found with bytes waiting; after a choice that found none, the
  time the silent longest reaches its grace is kept, and choices before it cost nothing (a flood of
  refused newcomers does not rescan). Times are the server loop's clock, which never goes back: so each
  address's order is also oldest-heard first, and that time only moves later.
"""

from __future__ import annotations

import math
import socket
from typing import Generic, Protocol, TypeVar

from phoneemu.errors import PhoneEmuError

__all__ = ["DEFAULT_GRACE", "PEEKS_PER_CHOICE", "Room", "Silent", "checked_grace", "input_waits"]

#: seconds of silence after which a full server may close an unasked connection (module rules)
DEFAULT_GRACE = 1.0
#: candidates found with bytes waiting before a choice gives up (module rules)
PEEKS_PER_CHOICE = 8
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)


class Silent(Protocol):
    """What the room needs of a connection: its peer's address, when it was last heard from (set by
    :class:`Room`), and whether bytes of it wait unread (:func:`input_waits`)."""

    host: str
    heard: float

    def input_waits(self) -> bool: ...


C = TypeVar("C", bound=Silent)


def checked_grace(grace: float) -> float:
    """``grace`` when it is at least 0, else a PhoneEmuError naming ``first_request_grace`` (NaN too)."""
    if not grace >= 0:
        raise PhoneEmuError(f"first_request_grace {grace}: at least 0", path="first_request_grace")
    return grace


def input_waits(sock: socket.socket) -> bool:
    """Whether bytes from the peer wait unread in the kernel (a peek; nothing read). Its end, an error, or
    a closed socket: False (the connection's own callbacks say those)."""
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | _DONTWAIT))
    except OSError:  # BlockingIOError: nothing waits
        return False


class _Address(Generic[C]):
    """The open connections of one peer address (module rules)."""

    __slots__ = ("count", "unasked")

    def __init__(self) -> None:
        self.count = 0
        #: those not asked yet, silent longest first (insertion order; one heard from moves to the end)
        self.unasked: dict[C, None] = {}


class Room(Generic[C]):
    """A server's connections by address, and the choice of the one to close for room (module rules).
    ``opened``/``closed`` once each per connection; ``heard`` for each read of an unasked one; ``asked``
    when it makes its first step (or leaves the choice otherwise)."""

    __slots__ = ("_quiet_until", "addresses", "grace")

    def __init__(self, grace: float = DEFAULT_GRACE) -> None:
        self.grace = checked_grace(grace)
        self.addresses: dict[str, _Address[C]] = {}
        self._quiet_until = -math.inf  # no choice can find one before this time (module rules)

    def opened(self, conn: C, now: float) -> None:
        """``conn`` is open from ``now``: counted for its address, unasked, heard from at ``now``."""
        conn.heard = now
        address = self.addresses.get(conn.host)
        if address is None:
            address = self.addresses[conn.host] = _Address()
        address.count += 1
        address.unasked[conn] = None

    def heard(self, conn: C, now: float) -> None:
        """``conn``'s client sent bytes at ``now``: the silent least long of its address."""
        conn.heard = now
        address = self.addresses.get(conn.host)
        if address is not None and conn in address.unasked:  # moved to the end
            del address.unasked[conn]
            address.unasked[conn] = None

    def asked(self, conn: C) -> None:
        """``conn`` made its first step: never closed for room from now on (still counted)."""
        address = self.addresses.get(conn.host)
        if address is not None:
            address.unasked.pop(conn, None)

    def closed(self, conn: C) -> None:
        """``conn`` is gone (once per :meth:`opened`); its address leaves with its last connection."""
        address = self.addresses.get(conn.host)
        if address is None:
            return
        address.unasked.pop(conn, None)
        address.count -= 1
        if address.count <= 0:
            del self.addresses[conn.host]

    def held(self, host: str) -> int:
        """How many connections ``host`` holds."""
        address = self.addresses.get(host)
        return address.count if address is not None else 0

    def clear(self) -> None:
        """Forget every connection (the server closed)."""
        self.addresses.clear()
        self._quiet_until = -math.inf

    def victim(self, now: float) -> C | None:
        """The connection to close for a waiting one at ``now``: unasked, silent past the grace, nothing of
        it waiting unread, of the address holding the most unasked connections, the silent longest; None when
        there is none. One found with bytes waiting is heard from now, and the choice made again."""
        if now < self._quiet_until:
            return None
        cutoff = now - self.grace
        for _ in range(PEEKS_PER_CHOICE):
            best = self._silent_longest(cutoff, now)
            if best is None or not best.input_waits():
                return best
            self.heard(best, now)  # the loop is slow to read it, not its client to speak
        return None

    def _silent_longest(self, cutoff: float, now: float) -> C | None:
        """The unasked connection silent since ``cutoff`` or longer, of the address holding the most
        unasked connections among those that have one; of two alike, the one silent longest. None found: no
        choice finds one before the silent longest reaches its grace (kept, module rules)."""
        best: C | None = None
        best_count = 0
        oldest = now  # any connection opened later is heard from later still
        for address in self.addresses.values():
            first = next(iter(address.unasked), None)
            if first is None:
                continue
            oldest = min(oldest, first.heard)
            if first.heard > cutoff:
                continue
            count = len(address.unasked)  # its asked ones do not count (module rules)
            if count > best_count or (best is not None and count == best_count and first.heard < best.heard):
                best, best_count = first, count
        if best is None:
            self._quiet_until = oldest + self.grace
        return best

    def silence_due(self) -> float | None:
        """When the silent longest unasked connection reaches its grace; None when none is unasked."""
        oldest = min((next(iter(a.unasked)).heard for a in self.addresses.values() if a.unasked),
                     default=None)
        return None if oldest is None else oldest + self.grace
