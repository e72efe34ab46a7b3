"""A lean non-blocking UDP endpoint on the asyncio loop (used by the TFTP server and client).

Why not ``loop.create_datagram_endpoint``: its transport reads one datagram per readiness event
and costs a task-free but heavy setup per socket. This endpoint drains up to ``max_batch``
datagrams per readiness event and is created synchronously, which roughly halves the per-packet
cost of the TFTP server (see ``bench/tftp.py``). Sending never blocks: a full send buffer drops the
datagram, as the network could — TFTP's retransmission recovers (counted in ``send_drops``).

ICMP errors (Linux): an unconnected UDP socket is told nothing of the "port unreachable" its datagram
met unless it asks (``IP_RECVERR``). :func:`report_icmp_errors` asks; the socket then hands each queued
error to ``on_error`` as a :class:`PeerError` naming the address the refused datagram was sent to, so a
client can tell "nothing listens where I sent my request" from an error about an earlier peer. Such a
socket's next ``sendto``, to any peer, fails with the error still pending (the kernel reports it there
too) and that datagram would be lost: :meth:`UdpSocket.sendto` hands the queued errors over and sends it
once more (a shared server socket must not drop one peer's packet for another peer's closed port) —
unless one of those errors names the very address it goes to: that peer's port is closed, and the
datagram would only meet another "port unreachable" (it is dropped, counted in ``send_drops``).
"""

from __future__ import annotations

import _socket
import asyncio
import contextlib
import logging
import os
import socket
import struct
import sys
from collections.abc import Callable
from typing import Any

from phoneemu.net._listen import set_v6only
from phoneemu.values import address_of

__all__ = ["PeerError", "UdpSocket", "bound_udp_socket", "client_udp_socket", "report_icmp_errors"]

_log = logging.getLogger("phoneemu.net.udp")
Addr = tuple[Any, ...]


_NONBLOCK: int = getattr(socket, "SOCK_NONBLOCK", 0)
"""Linux: the socket is made non-blocking by ``socket()`` itself, one ``ioctl(FIONBIO)`` less per
socket (a phone opens one per TFTP transfer, issue #6); elsewhere ``setblocking(False)`` after."""


def bound_udp_socket(host: str, port: int, *, rcvbuf: int = 0) -> socket.socket:
    """A non-blocking UDP socket bound to ``host:port`` (family from the address text; ``::``
    dual-stack, other IPv6 addresses IPv6 only: :mod:`phoneemu.net._listen`)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_DGRAM | _NONBLOCK)
    try:
        if not _NONBLOCK:
            sock.setblocking(False)
        set_v6only(sock, host)
        if rcvbuf:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def client_udp_socket(family: int) -> socket.socket:
    """A non-blocking UDP socket of ``family`` left unbound: the kernel gives it an ephemeral port on
    every address (IPv6: dual-stack) at its first ``sendto``, as ``bind(("0.0.0.0", 0))`` would —
    one ``bind`` call less per TFTP transfer of a phone (issue #6). Only for a socket that sends
    before it waits for anything (a client's request)."""
    sock = socket.socket(family, socket.SOCK_DGRAM | _NONBLOCK)
    try:
        if not _NONBLOCK:
            sock.setblocking(False)
        if family == socket.AF_INET6:  # (set_v6only's test, without the socket's enum family)
            set_v6only(sock, "::")
    except OSError:
        sock.close()
        raise
    return sock


_RECVERR: dict[int, tuple[int, int]] = {socket.AF_INET: (socket.IPPROTO_IP, 11),
                                         socket.AF_INET6: (socket.IPPROTO_IPV6, 25)}
"""``IP_RECVERR`` / ``IPV6_RECVERR`` (Linux values; the socket module does not name them)."""

_family_number: Callable[[socket.socket], int] = _socket.socket.family.__get__
"""A socket's family as the number the kernel gives: ``sock.family`` is that number made an
``AddressFamily`` by four Python calls, per TFTP socket of a phone (issue #6)."""

_LINUX = sys.platform.startswith("linux")


class PeerError(OSError):
    """An ICMP error queued for a datagram this socket sent; ``peer`` is where that datagram went."""

    peer: Addr


def report_icmp_errors(sock: socket.socket) -> bool:
    """Ask the kernel to queue ICMP errors for ``sock`` (Linux ``IP_RECVERR``); False where it cannot.
    An IPv6 socket asks for its IPv4 peers' too (dual-stack ``::``: their errors are ICMPv4, reported
    only with ``IP_RECVERR``; the address comes back IPv4-mapped, as ``recvfrom`` gives it)."""
    family = _family_number(sock)
    opt = _RECVERR.get(family)
    if opt is None or not _LINUX:
        return False
    try:
        sock.setsockopt(opt[0], opt[1], 1)
    except OSError:
        return False
    if family == socket.AF_INET6:
        try:  # noqa: SIM105 - contextlib.suppress costs three calls (issue #6)
            sock.setsockopt(*_RECVERR[socket.AF_INET], 1)
        except OSError:
            pass  # (IPv6 peers' errors are reported still)
    return True


def _same_peer(a: Addr, b: Addr) -> bool:
    """``a`` and ``b`` name one address and port: the same host text, or one IP address however spelt
    (an IPv6 scope, flow info and scope id aside, as a socket gives them back)."""
    if len(a) < 2 or len(b) < 2 or a[1] != b[1]:
        return False
    if a[0] == b[0]:
        return True
    ip = address_of(str(a[0]))  # a host name: None, and only the same text is the same peer
    return ip is not None and ip == address_of(str(b[0]))


def _dropped(_data: bytes, _addr: Addr) -> None:
    """The datagram callback of a closed socket (never called: a closed socket reads nothing)."""


class UdpSocket:
    """Owns ``sock``; calls ``on_datagram(data, addr)`` for each datagram received."""

    __slots__ = ("_fd", "_loop", "_sockname", "closed", "icmp_errors", "max_batch", "on_datagram", "on_error",
                 "send_drops", "sock")

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
        self.icmp_errors = False  # report_icmp_errors(sock) was asked: errors come from the error queue
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
            if self.icmp_errors:
                self._queued_errors()
            elif self.on_error is not None:
                self.on_error(exc)
            return False
        try:
            self.on_datagram(data, addr)
        except Exception:
            _log.exception("udp: handler failed for datagram from %s", addr[:2])
        return True

    def _queued_errors(self) -> list[Addr]:
        """Drain the socket's error queue (``IP_RECVERR``), each error to ``on_error`` as a PeerError;
        the peers they name, one per error (``()`` when the kernel named none)."""
        peers: list[Addr] = []
        while not self.closed:
            try:
                _data, anc, _flags, addr = self.sock.recvmsg(1, 512, socket.MSG_ERRQUEUE)
            except OSError:  # empty (EAGAIN), or nothing to drain on this platform
                return peers
            code = next((struct.unpack_from("=I", data)[0] for _lvl, _typ, data in anc if len(data) >= 4), 0)
            err = PeerError(code, os.strerror(code) if code else "ICMP error")
            err.peer = tuple(addr) if addr else ()
            peers.append(err.peer)
            if self.on_error is not None:
                self.on_error(err)
        return peers

    def _ready(self) -> None:
        """At most ``max_batch`` datagrams per wake-up (servers): a busy socket cannot starve the loop.
        :meth:`_ready_one` inlined (one call less per datagram, issue #6): same steps, same order."""
        sock = self.sock
        for _ in range(self.max_batch):
            if self.closed:  # a handler closed it
                return
            try:
                data, addr = sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ECONNREFUSED from an ICMP port unreachable
                if self.icmp_errors:
                    self._queued_errors()
                elif self.on_error is not None:
                    self.on_error(exc)
                return
            try:
                self.on_datagram(data, addr)  # read each time: a handler may hand the socket on
            except Exception:
                _log.exception("udp: handler failed for datagram from %s", addr[:2])

    def sendto(self, data: bytes, addr: Addr) -> None:
        """Send without blocking; a full send buffer drops the datagram (``send_drops``). With
        ``IP_RECVERR`` an ICMP error queued for an earlier datagram fails this send: the queued errors
        go to ``on_error`` and the datagram is sent once more, unless one of them names ``addr`` itself:
        then it is dropped (``send_drops``), its peer's port being closed (module docstring)."""
        if self.closed:
            return
        try:
            self.sock.sendto(data, addr)
        except OSError as exc:
            self.send_failed(exc, data, addr)

    def send_failed(self, exc: OSError, data: bytes, addr: Addr) -> None:
        """What :meth:`sendto` does once ``sock.sendto(data, addr)`` raised ``exc`` (its docstring). A caller
        sending a datagram a packet may call the socket itself, a Python call less each, and hand a failure
        here: ``if not udp.closed:`` ``try: udp.sock.sendto(data, addr)`` ``except OSError as exc:
        udp.send_failed(exc, data, addr)`` is :meth:`sendto` (issue #6: the TFTP client's ACKs)."""
        if isinstance(exc, (BlockingIOError, InterruptedError)):
            self.send_drops += 1
            return
        peers = self._queued_errors() if self.icmp_errors else []
        if any(_same_peer(peer, addr) for peer in peers):
            self.send_drops += 1  # one more datagram to a closed port: not sent
        elif peers:
            self._send_again(data, addr)
        elif self.on_error is not None:
            self.on_error(exc)

    def _send_again(self, data: bytes, addr: Addr) -> None:
        """The second and last try of a datagram whose send met a pending ICMP error; failing again
        (another error already pending, a full buffer), it is dropped as the network could."""
        if self.closed:  # on_error closed the socket
            return
        try:
            self.sock.sendto(data, addr)
        except OSError:
            self.send_drops += 1
            self._queued_errors()

    def is_closing(self) -> bool:
        return self.closed

    def mute(self) -> socket.socket:
        """Stop reading and hand the socket over, open, to the caller, who closes it: its port stays
        taken, datagrams that still arrive wait in the kernel's receive buffer (bounded by ``SO_RCVBUF``)
        and go with the socket, never to a handler. This endpoint is done as after :meth:`close` (sends
        nothing, callbacks dropped). (A TFTP client socket held back after a failed transfer:
        ``tftp_client`` module docstring.)"""
        if not self.closed:
            self.closed = True
            self._stop_reading()
            self.on_datagram = _dropped
            self.on_error = None
        return self.sock

    def _stop_reading(self) -> None:
        """The loop stops watching the socket (a loop closing may refuse: nothing to stop then)."""
        try:  # noqa: SIM105 - contextlib.suppress costs three calls, a TFTP socket of each phone (issue #6)
            self._loop.remove_reader(self._fd)
        except Exception:  # noqa: S110 - see the docstring
            pass

    def close(self) -> None:
        """Close the socket. The callbacks are dropped too: they are usually bound methods of the owner,
        which holds this socket, and that cycle would otherwise wait for the cyclic GC (three sockets a
        phone boot in a fleet, issue #6); nothing calls them once closed."""
        if self.closed:
            return
        self.closed = True
        self._stop_reading()
        self.sock.close()
        self.on_datagram = _dropped
        self.on_error = None
