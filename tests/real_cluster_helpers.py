"""Loopback stand-ins for the real-cluster and HTTP tests (``test_*_real_cluster_*``, ``test_http_*``):

* a firewall's silence: a TCP port whose SYNs are dropped, so a connection to it neither succeeds nor is
  refused (no iptables needed);
* an HTTP server of the test's own making: :func:`serve_http` runs the test against a handler serving
  each connection on a loopback port; :func:`never_answering`, a server that takes the request and never
  answers (a TFTP port that must not be asked: conftest's ``unasked_tftp_port``);
* :func:`fetch_watched`: a phone's files fetched as ``boot`` fetches them (HTTP then TFTP, watched), and
  the note ``boot`` prints on HTTP after.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from phoneemu.commands._watched_fetch import Ports, WatchedFetcher
from phoneemu.net.tftp_server import TftpServer
from phoneemu.phone.boot import BootTarget
from phoneemu.phone.phone import Phone

__all__ = [
    "NEVER_ANSWERING_HELD_S",
    "HttpHandler",
    "fetch_watched",
    "never_answering",
    "serve_http",
    "syn_dropping_port",
]

#: what serves one connection of :func:`serve_http`
HttpHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

NEVER_ANSWERING_HELD_S = 5.0  # the longest never_answering holds a connection (a test gone wrong ends)
_FILLERS = 3  # connections that fill the accept queue (one is held with backlog 0; the rest are dropped)


@contextlib.contextmanager
def syn_dropping_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port on ``host`` listening with backlog 0 and never accepting, its queue filled: Linux drops the SYNs
    of any further connection, as a firewall that drops packets does. Closed on exit."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind((host, 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(_FILLERS):
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            with contextlib.suppress(BlockingIOError):
                filler.connect((host, port))
        yield port
    finally:
        for sock in (*fillers, listener):
            sock.close()


async def serve_http(handle: HttpHandler, run: Callable[[int], Awaitable[Any]]) -> Any:
    """``run(port)`` with ``handle`` serving each connection on a loopback port; the server closed after."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        return await run(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()



async def never_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Takes the request, never answers (until the client leaves, at most :data:`NEVER_ANSWERING_HELD_S`)."""
    try:
        await asyncio.wait_for(reader.read(), NEVER_ANSWERING_HELD_S)  # the client gives up first, closing
    except TimeoutError:
        pass
    finally:
        writer.close()


async def fetch_watched(phone: Phone, files: Mapping[str, bytes],
                        http_port: int) -> tuple[str | None, object]:
    """Fetch ``files`` with ``phone``'s fetcher (HTTP on ``http_port``, then a lab TFTP server serving
    ``files``), watched as ``boot`` watches it, each file checked; ``boot``'s note on HTTP, and the HTTP
    failure behind the last fallback."""
    async with TftpServer(files, "127.0.0.1", 0) as tftp:
        fetcher = phone.fetcher_for(BootTarget(host="127.0.0.1", tftp_port=tftp.port, http_port=http_port))
        watched = WatchedFetcher(fetcher, Ports("127.0.0.1", tftp.port, http_port), tell=lambda _: None)
        for name, data in files.items():
            assert await watched.fetch(name) == data
        return watched.http_unanswered_note(), getattr(fetcher, "last_fallback", None)
