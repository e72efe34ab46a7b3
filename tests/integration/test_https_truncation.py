"""The phone's HTTPS ``GET /`` (phone/https.py ``_get``) over loopback TLS: a body delimited by the
connection's close is kept only when TLS ended it with a close_notify (RFC 9112 §9.8, RFC 8446 §6.1).

Red team R16: a server (or anyone on the path injecting a TCP FIN) ending the connection with a bare TCP
close had the body read so far kept as the whole answer, status 200 — a truncation attack on an
authenticated connection. Bodies framed by Content-Length or chunked carry their own end and are kept.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from phoneemu.net.tls import open_tls_connection, phone_client_context
from phoneemu.phone.https import _get
from tests.helpers import run, self_signed_server_context

HOST = "127.0.0.1"
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _fetch(answer: bytes, *, tcp_close: bool, version: str) -> tuple[int | None, bytes, str]:
    """``_get`` against a TLS server answering ``answer``, then ending with a bare TCP close (``tcp_close``:
    no close_notify) or a TLS close (close_notify, then the TCP close)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
            if tcp_close:  # the FIN without the TLS close_notify (as one injected on the path)
                writer.get_extra_info("socket").shutdown(socket.SHUT_WR)
                await asyncio.wait_for(reader.read(1), 5.0)  # the client's end (bounded)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client went away: its right
        finally:
            writer.close()

    server = await asyncio.start_server(handle, HOST, 0, ssl=self_signed_server_context("https", 7))
    try:
        reader, writer = await open_tls_connection(HOST, server.sockets[0].getsockname()[1],
                                                   phone_client_context((version,)), timeout=5.0)
        try:
            return await _get(reader, writer, HOST, timeout=5.0, max_body=65536)
        finally:
            writer.close()
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_a_body_read_to_a_tcp_close_without_close_notify_is_refused_as_maybe_cut(version: str) -> None:
    code, body, problem = run(_fetch(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n<Directory>cut",
                                     tcp_close=True, version=version), limit=20.0)
    assert (code, body) == (None, b""), problem
    assert "without the TLS close_notify" in problem and "RFC 9112 §9.8" in problem, problem
    assert "HTTP 200 body (14 bytes" in problem, problem


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_a_body_read_to_a_close_notify_is_kept(version: str) -> None:
    got = run(_fetch(b"HTTP/1.1 200 OK\r\n\r\n<Directory/>", tcp_close=False, version=version), limit=20.0)
    assert got == (200, b"<Directory/>", "")


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n<Directory/>",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nc\r\n<Directory/>\r\n0\r\n\r\n",
])
def test_a_framed_body_whole_before_a_tcp_close_is_kept(answer: bytes) -> None:
    """RFC 9112 §9.8: as much as Content-Length said, or the last chunk, is complete whatever the close."""
    assert run(_fetch(answer, tcp_close=True, version="1.3"), limit=20.0) == (200, b"<Directory/>", "")
