"""A client that reads slowly but steadily, for the tests of the lab's "client still taking what we sent"
rule (:mod:`phoneemu.net._taken`) and of the servers' close: :data:`PIECE` bytes every :data:`GAP_S`, about
40 KB/s, far above the rule's floors however loaded the machine. The client's socket is
:func:`tests.sip_helpers.connect_not_reading`'s (a small receive buffer), the server's send buffer set by
the test (loopback's default holds megabytes: the server would wait for nothing)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from phoneemu.net.http import HttpServer
from tests.polling import poll_until
from tests.sip_helpers import SLOW_HOST, SMALL_BUFFER, connect_not_reading

PIECE = 2048
GAP_S = 0.05
RECV_WAIT_S = 3.0  # the longest one read of the client waits, by default (a test gone wrong ends)
STOP_AFTER = 8 * 1024  # the client that stops reads this much first

#: one paced read of a connection: what it brought (b"": nothing whole yet), None at its end
Recv = Callable[[], Awaitable[bytes | None]]


def raw_recv(sock: socket.socket) -> Recv:
    """One read of at most :data:`PIECE` bytes of ``sock``."""
    loop = asyncio.get_running_loop()

    async def recv() -> bytes | None:
        return await loop.sock_recv(sock, PIECE) or None
    return recv


def _never(_got: bytearray) -> bool:
    return False


async def read_steadily(recv: Recv, done: Callable[[bytearray], bool] = _never, *,
                        stop_after: int | None = None, recv_wait: float = RECV_WAIT_S) -> tuple[int, str]:
    """Take what ``recv()`` gives every :data:`GAP_S` (each read ``recv_wait`` s at most) until
    ``done(all read)`` (or ``stop_after`` bytes: then stop reading), else the connection's end; (bytes
    read, how it ended: ``all came``, ``stopped``, ``end of stream``, ``cut: ...``)."""
    got = bytearray()
    for _ in range(100_000):  # bounded: each read takes at least a byte, or ends
        if stop_after is not None and len(got) >= stop_after:
            return len(got), "stopped"
        try:
            more = await asyncio.wait_for(recv(), recv_wait)
        except (ConnectionError, TimeoutError, ssl.SSLError) as exc:
            return len(got), f"cut: {exc!r}"
        if more is None:
            return len(got), "end of stream"
        got += more
        if done(got):
            return len(got), "all came"
        await asyncio.sleep(GAP_S)
    return len(got), "too many reads"


@contextlib.asynccontextmanager
async def reading_steadily(sock: socket.socket, *,
                           recv_wait: float = RECV_WAIT_S) -> AsyncIterator[asyncio.Task[tuple[int, str]]]:
    """:func:`read_steadily` of ``sock`` to its end, in a task for the block; the task cancelled (and
    waited for, 6 s at most) after it."""
    reading = asyncio.ensure_future(read_steadily(raw_recv(sock), recv_wait=recv_wait))
    try:
        yield reading
    finally:
        reading.cancel()
        await asyncio.wait((reading,), timeout=6.0)


async def seconds_until_let_go(recv: Recv, let_go: Callable[[], bool], *, within: float) -> float:
    """Read :data:`STOP_AFTER` bytes steadily, then stop reading: the seconds until ``let_go()`` (the
    server let the connection go), polled every 0.02 s, ``within`` s at most."""
    read, ended = await read_steadily(recv, stop_after=STOP_AFTER)
    assert ended == "stopped", (read, ended)
    stopped = time.monotonic()
    await poll_until(let_go, "the connection let go", within=within, every=0.02)
    return time.monotonic() - stopped


async def serve_to(srv: HttpServer, sock: socket.socket, request: bytes, *, send_buffer: int,
                   within: float = 5.0) -> None:
    """Send ``request`` on ``sock`` once ``srv`` holds the connection (polled, ``within``
    s at most), its socket's send buffer made ``send_buffer`` bytes first."""
    await poll_until(lambda: len(srv._writers) == 1, "the connection accepted", within=within, every=0.01)
    server_side = next(iter(srv._writers)).get_extra_info("socket")
    server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    await asyncio.get_running_loop().sock_sendall(sock, request)


async def http_close_mid_response(size: int, *, end_within: float) -> str:
    """Serve a file of ``size`` bytes to a steady reader (each read 5 s at most; the server's send buffer
    small), close the server 0.5 s in (3 s at most): how the reader's connection ended, ``end_within`` s
    at most after the close (else ``still open after the server's close``)."""
    srv = await HttpServer({"big.bin": bytes(size)}, SLOW_HOST, 0, idle_timeout=1.0).start()
    sock = await connect_not_reading(srv.port)
    try:  # the server's send buffer small before the request
        await serve_to(srv, sock, b"GET /big.bin HTTP/1.1\r\nHost: lab\r\n\r\n", send_buffer=SMALL_BUFFER)
        async with reading_steadily(sock, recv_wait=5.0) as reading:
            await asyncio.sleep(0.5)
            await asyncio.wait_for(srv.close(), 3.0)
            done, _ = await asyncio.wait((reading,), timeout=end_within)
            for _ in range(4):  # the handler's end after the abort
                await asyncio.sleep(0.02)
            return reading.result()[1] if done else "still open after the server's close"
    finally:
        sock.close()
