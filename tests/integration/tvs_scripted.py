"""Scripted TVS servers on loopback TLS, shared by the TVS client and phone tests (spec §E.1, §E.2).

A server reads one request (:func:`read_request`), counts it, runs its script — which writes what the
test wants the phone to read, or nothing — and closes the connection, at once or (``hold_open``) only
when the test ends, as a node that keeps the connection would. ``hung()`` is a port that accepts TCP
and never speaks; ``closed()`` one where nothing listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Awaitable, Callable

from phoneemu.protocols import tvs

HOST = "127.0.0.1"

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, tvs.TvsMessage], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tvs.TvsMessage | None:
    """The first request the phone sends (None if it closes first); at most 64 reads."""
    dec = tvs.FrameDecoder()
    for _ in range(64):
        data = await reader.read(65536)
        if not data:
            return None
        msgs = dec.feed(data)
        if msgs:
            return msgs[0]
    return None


class TvsServers:
    """Scripted TVS servers (and hung or closed ports) on loopback; :meth:`close` ends them all."""

    def __init__(self, *, hold_open: bool = False) -> None:
        self.hold_open = hold_open
        self.done = asyncio.Event()
        self._servers: list[asyncio.AbstractServer] = []
        self._raw: list[socket.socket] = []

    async def start(self, script: Script, ctx: ssl.SSLContext, *, host: str = HOST,
                    counted: Callable[[], None] | None = None) -> int:
        """A TLS server running ``script`` on each request it reads (``counted`` called first); its port."""
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                req = await read_request(reader)
                if req is not None:
                    if counted is not None:
                        counted()
                    await script(reader, writer, req)
                    await writer.drain()
                    if self.hold_open:
                        await self.done.wait()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 0.5)

        srv = await asyncio.start_server(handle, host, 0, ssl=ctx, ssl_handshake_timeout=5)
        self._servers.append(srv)
        return int(srv.sockets[0].getsockname()[1])

    def hung(self, host: str = HOST) -> int:
        """Accepts TCP (the kernel's backlog) and never speaks: a hung node."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((host, 0))
        s.listen(8)
        self._raw.append(s)
        return int(s.getsockname()[1])

    @staticmethod
    def closed(host: str = HOST) -> int:
        """A port bound then closed: nothing listens (connection refused)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((host, 0))
        port = int(s.getsockname()[1])
        s.close()
        return port

    async def close(self) -> None:
        self.done.set()
        for srv in self._servers:
            srv.close()
        for s in self._raw:
            s.close()
        await asyncio.sleep(0.02)
