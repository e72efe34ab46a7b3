"""Review S35 R4 of 3e6aa7f (``HttpServer.close()`` aborts a connection with a response in its buffer).

After the abort the handler's drain ended quietly (the connection lost without an error wakes a drain
with a result) and :meth:`HttpServer._respond` wrote every piece left into the aborted transport: on
asyncio each past the fifth logged a WARNING "socket.send() raised exception." (27 lines for 8 MiB); on
uvloop the next write raised RuntimeError ("the handler is closed"), logged with its traceback as
"http: connection from ... failed". Now the response ends at the first piece after the close, quietly.

Over real loopback sockets: the client's receive buffer and the server's send buffer small, the client
reading steadily, the server closed mid-response.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import socket
from collections.abc import Callable

import pytest

from phoneemu.net.http import HttpServer
from tests.sip_helpers import SLOW_HOST, SMALL_BUFFER, connect_not_reading

BODY = 8 * 1024 * 1024  # 32 pieces of 256 KiB: most still to be written at the close
PIECE = 2048
GAP_S = 0.05


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        if importlib.util.find_spec("uvloop") is None:
            pytest.skip("uvloop not installed")
        import uvloop
        return uvloop.new_event_loop
    return asyncio.new_event_loop


async def _read_steadily(sock: socket.socket) -> str:
    """:data:`PIECE` bytes every :data:`GAP_S` until the connection ends: how it ended."""
    loop = asyncio.get_running_loop()
    for _ in range(400):  # bounded: ~20 s
        try:
            data = await asyncio.wait_for(loop.sock_recv(sock, PIECE), 5.0)
        except (ConnectionError, TimeoutError) as exc:
            return f"cut: {exc!r}"
        if not data:
            return "end of stream"
        await asyncio.sleep(GAP_S)
    return "too many reads"


async def _close_mid_response() -> str:
    """Serve :data:`BODY` to a steady reader, close the server 0.5 s in: how the reader's connection
    ended."""
    srv = await HttpServer({"big.bin": bytes(BODY)}, SLOW_HOST, 0, idle_timeout=1.0).start()
    loop = asyncio.get_running_loop()
    sock = await connect_not_reading(srv.port)
    try:
        for _ in range(100):  # bounded: 5 s; the server's send buffer small before the request
            if srv._writers:
                break
            await asyncio.sleep(0.05)
        next(iter(srv._writers)).get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        await loop.sock_sendall(sock, b"GET /big.bin HTTP/1.1\r\nHost: lab\r\n\r\n")
        reading = asyncio.ensure_future(_read_steadily(sock))
        await asyncio.sleep(0.5)
        await asyncio.wait_for(srv.close(), 3.0)
        done, _ = await asyncio.wait((reading,), timeout=6.0)
        for _ in range(4):  # the handler's end after the abort
            await asyncio.sleep(0.02)
        return reading.result() if done else "still open after the server's close"
    finally:
        sock.close()


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_the_close_ends_a_response_quietly(loop_name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with asyncio.Runner(loop_factory=_loop_factory(loop_name)) as runner:
        ended = runner.run(_close_mid_response())
    assert ended.startswith(("cut", "end of stream")), ended
    loud = [f"{r.name} {r.levelname} {r.getMessage()}" for r in caplog.records
            if r.levelno >= logging.WARNING]
    assert not loud, loud[:3]
