"""Room under a connection flood: which connection a full lab server closes for a newcomer (ours).

One rule for the lab's TVS on the loop and on threads (:class:`phoneemu.lab.tvs_loop.LoopTvsServer`,
:class:`phoneemu.lab.tvs_threaded.ThreadedTvsServer`) and :class:`phoneemu.net.tls.TlsServer` (CAPF, HTTPS,
the SIP registrars, the directory, the asyncio TVS), and across the servers sharing one budget:

* A connection is *unasked* until it has made its first step — the TVS: a complete TVS request;
  TlsServer: its TLS handshake finished (what the server itself sees; a client that completed a handshake
  is not silent by this rule, whatever it does next), or over plain TCP its client's first bytes. An asked
  connection is never closed for room.
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
* Across servers (:class:`Rooms`): servers sharing one :class:`phoneemu.net.tls.ConnectionBudget` (the lab's
  TLS and TCP listeners) each keep their room; when the budget is full, the choice is made across their
  rooms by the same rule — the address holding the most unasked connections counted over every server, its
  silent longest whichever server holds it, each room's connections past that room's grace. One
  connection is in one room only (its server's), so its bookkeeping is not doubled. Was: a silent flood on
  one server (the directory, SIP over TCP) took the budget and the others refused every newcomer until the
  flood's timeout. The servers of one budget run on one event loop (one clock).
* A server that does not see its reads (the threaded TVS: its workers block inside OpenSSL's handshake)
  asks the kernel (:func:`spoke_within`: Linux's ``TCP_INFO``, when the last data came); where the kernel
  cannot say, such a server does not make room (it did not before).
"""

from __future__ import annotations

import math
import socket
import struct
import sys
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

from phoneemu.errors import PhoneEmuError

__all__ = ["DEFAULT_GRACE", "KERNEL_SAYS", "PEEKS_PER_CHOICE", "Room", "Rooms", "Silent", "accept_queue",
           "checked_grace", "input_waits", "spoke_within"]

#: seconds of silence after which a full server may close an unasked connection (module rules)
DEFAULT_GRACE = 1.0
#: candidates found with bytes waiting before a choice gives up (module rules)
PEEKS_PER_CHOICE = 8
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
#: Linux's ``TCP_INFO`` (struct tcp_info, stable layout): None elsewhere
_TCP_INFO: int | None = getattr(socket, "TCP_INFO", None) if sys.platform.startswith("linux") else None
#: whether the kernel says when a connection last received data and how many wait to be accepted
KERNEL_SAYS = _TCP_INFO is not None and _DONTWAIT != 0
_INFO_SIZE = 104  # the struct's start; the kernel copies at most what is asked
_UNACKED_AT = 24  # tcpi_unacked: on a listening socket, the connections waiting in its accept queue
_LAST_DATA_RECV_AT = 52  # tcpi_last_data_recv: milliseconds since data last came (since the connection
_U32 = struct.Struct("=I")  # was established when none has)


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
    try:  # socket.socket's recv: an ssl.SSLSocket's own refuses flags
        return bool(socket.socket.recv(sock, 1, socket.MSG_PEEK | _DONTWAIT))
    except (OSError, ValueError):  # BlockingIOError: nothing waits
        return False


def _tcp_info_u32(sock: socket.socket, offset: int) -> int | None:
    """One 32-bit field of the kernel's ``struct tcp_info`` of ``sock``; None where there is none."""
    if _TCP_INFO is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _INFO_SIZE)
    except (OSError, ValueError):  # closed meanwhile
        return None
    if len(info) < offset + _U32.size:
        return None
    value: int = _U32.unpack_from(info, offset)[0]
    return value


def spoke_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the kernel received data from the peer of ``sock`` in the last ``seconds`` (read or not):
    for a server that does not see its own reads (module rules). Unknown (not Linux, closed): False."""
    ms = _tcp_info_u32(sock, _LAST_DATA_RECV_AT)
    return ms is not None and ms < seconds * 1000


def accept_queue(listener: socket.socket) -> int:
    """How many connections wait in the accept queue of ``listener`` (the kernel's count); 0 where the
    kernel cannot say (module rules: no room made there)."""
    count = _tcp_info_u32(listener, _UNACKED_AT)
    return count if count is not None else 0


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
        chosen, self._quiet_until = _victim((self,), now)
        return chosen

    def silence_due(self) -> float | None:
        """When the silent longest unasked connection reaches its grace; None when none is unasked."""
        oldest = min((next(iter(a.unasked)).heard for a in self.addresses.values() if a.unasked),
                     default=None)
        return None if oldest is None else oldest + self.grace


class Rooms(Generic[C]):
    """The rooms of the servers sharing one budget, and the choice across them when it is full (module
    rules, "Across servers"). A server adds its room when it starts and removes it when it closes."""

    __slots__ = ("_quiet_until", "rooms")

    def __init__(self) -> None:
        self.rooms: list[Room[C]] = []
        self._quiet_until = -math.inf  # no choice can find one before this time (module rules)

    def add(self, room: Room[C]) -> None:
        if room not in self.rooms:
            self.rooms.append(room)
            self._quiet_until = -math.inf

    def remove(self, room: Room[C]) -> None:
        if room in self.rooms:
            self.rooms.remove(room)

    def victim(self, now: float) -> C | None:
        """:meth:`Room.victim` across the rooms: the address holding the most unasked connections over all
        of them gives way first, its silent longest whichever room holds it."""
        if now < self._quiet_until or not self.rooms:
            return None
        chosen, self._quiet_until = _victim(self.rooms, now)
        return chosen


def _victim(rooms: Sequence[Room[C]], now: float) -> tuple[C | None, float]:
    """The choice of :meth:`Room.victim` over ``rooms``, and the time before which another finds none
    (``-inf`` when one was found or the peeks ran out: the next choice looks again)."""
    for _ in range(PEEKS_PER_CHOICE):
        found, due = _silent_longest(rooms, now)
        if found is None:
            return None, due
        best, room = found
        if not best.input_waits():
            return best, -math.inf
        room.heard(best, now)  # the loop is slow to read it, not its client to speak
    return None, -math.inf


def _silent_longest(rooms: Sequence[Room[C]], now: float) -> tuple[tuple[C, Room[C]] | None, float]:
    """The unasked connection silent past its room's grace, of the address holding the most unasked
    connections over ``rooms`` among those that have one; of two alike, the one silent longest; with its
    room. None found: also when the first choice can find one — the silent longest of each room reaching
    its grace, or one opened from now reaching the least grace (module rules)."""
    counts: dict[str, int] = {}
    firsts: dict[str, tuple[C, Room[C]]] = {}
    due = now + min(room.grace for room in rooms)  # one opened later reaches its grace later still
    for room in rooms:
        cutoff = now - room.grace
        for host, address in room.addresses.items():
            first = next(iter(address.unasked), None)
            if first is None:
                continue
            counts[host] = counts.get(host, 0) + len(address.unasked)  # asked ones do not count
            due = min(due, first.heard + room.grace)
            if first.heard > cutoff:
                continue
            held = firsts.get(host)
            if held is None or first.heard < held[0].heard:
                firsts[host] = (first, room)
    best: tuple[C, Room[C]] | None = None
    best_count = 0
    for host, found in firsts.items():
        count = counts[host]
        older = best is not None and found[0].heard < best[0].heard
        if count > best_count or (count == best_count and older):
            best, best_count = found, count
    return best, due
