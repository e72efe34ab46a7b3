"""Listening sockets on the IPv6 wildcard: ``::`` is every address, IPv4 included.

Rules:

* A socket bound to ``::`` is dual-stack (``IPV6_V6ONLY`` off): IPv4 peers reach it as
  ``::ffff:a.b.c.d``. This holds for TCP (HTTP 6970, TVS, CAPF) and UDP (TFTP) alike, so
  ``lab serve --host ::`` serves IPv4 and IPv6 phones with every service. (asyncio turns
  ``IPV6_V6ONLY`` on for every IPv6 listener, while a UDP socket takes the kernel default — on Linux
  dual-stack —: before this rule an IPv4 phone got TFTP from ``::`` but no HTTP, TVS or CAPF.)
* Any other IPv6 address (``::1``, ``2001:db8::10``) listens on IPv6 only; ``0.0.0.0`` is every
  IPv4 address.
* A start that does not return closes what it bound (:func:`serving`): a server start cancelled while it
  binds (``lab serve`` stopped by a signal, a task cancelled) leaves no socket listening.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable
from typing import Any

__all__ = ["IPV6_ANY", "is_ipv6_any", "serving", "set_v6only", "tcp_listener"]

IPV6_ANY = "::"


def is_ipv6_any(host: object) -> bool:
    """True for the IPv6 wildcard ``::`` (the dual-stack every-address listener)."""
    return host == IPV6_ANY


def set_v6only(sock: socket.socket, host: object) -> None:
    """``IPV6_V6ONLY`` of an IPv6 ``sock`` about to be bound to ``host``: off for ``::``, on otherwise."""
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if is_ipv6_any(host) else 1)


def tcp_listener(host: str, port: int, *, backlog: int, blocking: bool = False) -> socket.socket:
    """A listening TCP socket on ``host:port`` (a name is resolved, its first passive address taken;
    ``""`` is every IPv4 address), non-blocking for ``asyncio.start_server(sock=...)`` or an event
    loop's reader unless ``blocking`` (a thread sleeping in ``accept``); ``SO_REUSEADDR`` as asyncio
    sets it, :func:`set_v6only`.
    OSError as ``getaddrinfo``/``bind``/``listen`` raise it."""
    family, proto = socket.AF_INET, 0
    addr: Any = ("", port)  # "": every IPv4 address, as bind takes it
    if host:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        family, proto, addr = info[0], info[2], info[4]  # an IPv6 address keeps its scope
    sock = socket.socket(family, socket.SOCK_STREAM, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        set_v6only(sock, host)
        sock.bind(addr)
        sock.listen(backlog)
        sock.setblocking(blocking)
    except BaseException:
        sock.close()
        raise
    return sock


async def serving(unstarted: Awaitable[asyncio.Server], sock: socket.socket | None = None) -> asyncio.Server:
    """The server ``unstarted`` makes (``loop.create_server`` or ``asyncio.start_server`` with
    ``start_serving=False``, on ``sock`` when given), now accepting. When this does not return — cancelled
    at one of its awaits, or an error — what it bound is closed, ``sock`` included (module rules): with
    asyncio's ``start_serving=True`` a cancellation in the loop iteration it skips after ``listen`` lost
    the server with its socket still listening (the port taken while the loop ran, a ResourceWarning
    after). Same loop iterations as asyncio's own start.

    Cancelled, it has accepted no connection: the accept asyncio queues in the iteration after
    ``start_serving`` runs after this step, and the close cancels it, so a connection waiting in the
    listen queue ends with the listener (Python 3.11; tests/unit/test_listen_serving_cancelled.py).
    Not covered here: a server its owner closes in the iteration right after an accept (CPython
    gh-109564: the accepted socket is left to the garbage collector, its peer waits until then)."""
    try:
        server = await unstarted
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    try:
        await server.start_serving()
    except BaseException:
        server.close()  # its listening sockets closed at once
        raise
    return server
