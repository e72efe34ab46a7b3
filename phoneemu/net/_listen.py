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
* A close cuts every connection the server accepted (:func:`close_listening`): it stops accepting, lets
  the accepts under way become connections their owner tracks, then closes the listener and cuts them.
  Before, a close in the loop iteration right after an accept lost that connection (CPython gh-109564,
  open for 3.11: on the asyncio loop its transport failed half-built and its socket waited for the
  garbage collector; on uvloop its handler started after the close and served on) — its peer hung.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["IPV6_ANY", "close_listening", "is_ipv6_any", "serving", "set_v6only", "tcp_listener"]

IPV6_ANY = "::"

#: Loop iterations :func:`close_listening` lets run before it cuts the connections (ours): an accept under
#: way builds its transport (1), the transport's ``connection_made`` starts the handler (2), the handler's
#: first step registers it with its owner (3); one more for margin.
ATTACH_HOPS = 4


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
    A server its owner closes in the iteration right after an accept (CPython gh-109564) is
    :func:`close_listening`'s."""
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


async def close_listening(server: asyncio.Server, cut_connections: Callable[[], None]) -> None:
    """Close ``server`` so that no connection it accepted outlives the close (module rules): stop accepting
    (:func:`_stop_accepting`), let :data:`ATTACH_HOPS` loop iterations run so the accepts under way
    become connections their owner tracks, close the listener, then ``cut_connections()`` (the owner's:
    close its writers, cancel its tasks). The caller then awaits what it cut and ``server.wait_closed()``.

    Cancelled during those iterations, it still closes the listener and cuts the connections, then:
    a task already being cancelled when the close began (its owner cleaning up: ``LabServers.stop``
    after Ctrl-C) has its cancel held until the close is done and passed on to its next await
    (:func:`_cancel_again`), so that the owner's next close runs too — before these iterations the close
    never suspended; a cancel requested during the close (a time-out; the task's count of requests
    grew, :func:`_requested_during`) is raised at once, a cleaning-up task's too (was: held, so an
    ``asyncio.timeout`` around the close raised no TimeoutError and left a stray cancel)."""
    task = asyncio.current_task()
    cancels_before = task.cancelling() if task is not None else 0
    held = False
    try:
        if not _stop_accepting(server):
            server.close()
        for _ in range(ATTACH_HOPS):
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                if _requested_during(task, cancels_before):
                    raise
                held = True
    finally:
        server.close()
        cut_connections()
    if held:
        _cancel_again()


def _requested_during(task: asyncio.Task[Any] | None, cancels_before: int) -> bool:
    """Whether the CancelledError ``task`` took in a close is a cancel requested since the close began
    (its count of requests above ``cancels_before``), or the task was not being cancelled before: raised
    at once. Otherwise it is the cancel already requested before the close (held)."""
    return task is None or cancels_before == 0 or task.cancelling() > cancels_before


def _cancel_again() -> None:
    """Have the running task's next await raise the CancelledError it took: its count of cancel requests
    (what ``asyncio.timeout`` and task groups check) stays as it was."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
        task.cancel()


def _stop_accepting(server: asyncio.Server) -> bool:
    """Stop ``server`` accepting without closing it; False where that cannot be done that way.

    The asyncio selector loop accepts in a reader callback and builds each connection's transport a loop
    iteration later; a ``server.close()`` in between makes that build fail (CPython gh-109564) — so here
    its readers are removed first (a reader callback already queued is cancelled with it). uvloop (and
    the proactor loop) accept otherwise (``remove_reader`` does not find the socket): there the accepted
    connection's transport is built with the accept and a ``server.close()`` is safe — the caller closes
    first."""
    loop = asyncio.get_running_loop()
    stopped = bool(server.sockets)
    for sock in server.sockets:
        try:
            removed = loop.remove_reader(sock.fileno())
        except (NotImplementedError, RuntimeError, ValueError, OSError):
            removed = False
        stopped = stopped and removed is True
    return stopped
