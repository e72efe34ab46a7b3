"""A lean non-blocking UDP endpoint on the asyncio loop (used by the TFTP server and client).

Why not ``loop.create_datagram_endpoint``: its transport reads one datagram per readiness event
and costs a task-free but heavy setup per socket. This endpoint drains up to ``max_batch``
datagrams per readiness event and is created synchronously, which roughly halves the per-packet
cost of the TFTP server (see ``bench/tftp.py``). Sending never blocks: a full send buffer drops the
datagram, as the network could — TFTP's retransmission recovers (counted in ``send_drops``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

__all__ = ["UdpSocket", "bound_udp_socket"]

_log = logging.getLogger("phoneemu.net.udp")
Addr = tuple[Any, ...]


def bound_udp_socket(host: str, port: int, *, rcvbuf: int = 0) -> socket.socket:
    """A non-blocking UDP socket bound to ``host:port`` (family from the address text)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if rcvbuf:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _dropped(_data: bytes, _addr: Addr) -> None:
    """The datagram callback of a closed socket (never called: a closed socket reads nothing)."""


class UdpSocket:
    """Owns ``sock``; calls ``on_datagram(data, addr)`` for each datagram received."""

    __slots__ = ("_fd", "_loop", "_sockname", "closed", "max_batch", "on_datagram", "on_error", "send_drops",
                 "sock")

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 on_datagram: Callable[[bytes, Addr], None],
                 on_error: Callable[[OSError], None] | None = None, *, max_batch: int = 64) -> None:
        self._loop = loop
        self.sock = sock
        self.on_datagram = on_datagram
        self.on_error = on_error
        self.max_batch = max_batch
        self.send_drops = 0
        self.closed = False
        self._sockname: Addr | None = None
        self._fd = sock.fileno()
        loop.add_reader(self._fd, self._ready if max_batch > 1 else self._ready_one)

    @property
    def sockname(self) -> Addr:
        """The bound address (while open), asked of the kernel once when first wanted: client sockets
        never ask, one ``getsockname`` call less per transfer."""
        if self._sockname is None:
            self._sockname = self.sock.getsockname()
        return self._sockname

    def _ready_one(self) -> bool:
        """Receive and hand over one datagram; False when there is nothing more to read now (or the
        socket is closed). The reader of client sockets (``max_batch=1``: one datagram in flight)."""
        if self.closed:
            return False
        try:
            data, addr = self.sock.recvfrom(65536)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:  # e.g. ECONNREFUSED from an ICMP port unreachable
            if self.on_error is not None:
                self.on_error(exc)
            return False
        try:
            self.on_datagram(data, addr)
        except Exception:
            _log.exception("udp: handler failed for datagram from %s", addr[:2])
        return True

    def _ready(self) -> None:
        """At most ``max_batch`` datagrams per wake-up (servers): a busy socket cannot starve the loop."""
        for _ in range(self.max_batch):
            if not self._ready_one():
                return

    def sendto(self, data: bytes, addr: Addr) -> None:
        if self.closed:
            return
        try:
            self.sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self.send_drops += 1
        except OSError as exc:
            if self.on_error is not None:
                self.on_error(exc)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        """Close the socket. The callbacks are dropped too: they are usually bound methods of the owner,
        which holds this socket, and that cycle would otherwise wait for the cyclic GC (three sockets a
        phone boot in a fleet, issue #6); nothing calls them once closed."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._fd)
        self.sock.close()
        self.on_datagram = _dropped
        self.on_error = None
