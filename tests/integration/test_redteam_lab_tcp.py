"""Red team of the lab's TCP servers with hostile clients over loopback (review RL).

Rules under test: a SIP registrar's client that sends and never reads has its connection aborted once an
answer, or what is still unsent at the end, is not taken within ``read_timeout`` (logged ``timeout``),
so it cannot hold a connection and its descriptor for ever (:mod:`phoneemu.lab.sip_service`); the HTTP
file server's close waits at most ``idle_timeout`` for the last response to be taken
(:mod:`phoneemu.net.http`).
Each test makes the server's socket send buffer small, so a few hundred answers fill what the kernel holds
(its default takes megabytes on loopback).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

import pytest

from phoneemu.net.http import HttpServer
from phoneemu.net.tls import TlsServer
from tests.polling import poll_until
from tests.sip_helpers import (
    SLOW_HOST,
    SLOW_MAC,
    connect_not_reading,
    pipelined_register,
    small_buffer_registrar,
    small_send_buffer,
)

HOST = SLOW_HOST
READ_TIMEOUT = 0.5
#: how long a test waits for the server to let a connection go (many times READ_TIMEOUT; polled)
WAIT_S = 10.0


async def _send_bounded(sock: socket.socket, data: bytes) -> int:
    """Send what the kernel takes of ``data`` within a second (the server may stop reading); bytes sent."""
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.sock_sendall(sock, data), 1.0)
    except TimeoutError:
        return -1
    return len(data)


async def _until(check: Callable[[], bool], what: str) -> None:
    """:func:`tests.polling.poll_until` within :data:`WAIT_S`."""
    await poll_until(check, what, within=WAIT_S, every=0.05)


def _reset_or_cut(sock: socket.socket) -> bool:
    """Whether the server cut ``sock``: reading what came ends with a reset or an end of stream. Each read
    waits up to 5 s: an aborted socket's unsent bytes are still delivered by the server's kernel, whose
    zero-window probes back off while the client did not read (under load one wait passed 2 s)."""
    sock.setblocking(True)
    sock.settimeout(5.0)
    try:
        for _ in range(10_000):
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return False


@pytest.mark.parametrize(("registers", "then_close", "logged"), [
    (1200, False, "an answer not taken within 0.5s"),  # keeps sending, never reads: a drain waited for ever
    (150, True, "bytes not taken within 0.5s"),  # its side closed, never reads: the close waited for ever
])
def test_sip_client_that_never_reads_is_cut_after_read_timeout(
        registers: int, then_close: bool, logged: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="phoneemu.lab.sip")
    handler, outcomes = small_buffer_registrar(READ_TIMEOUT)

    async def main() -> None:
        async with TlsServer(handler, None, HOST, 0, name="sip") as srv:
            sock = await connect_not_reading(srv.port)
            try:
                await _send_bounded(sock, b"".join(pipelined_register(n) for n in range(1, registers + 1)))
                if then_close:
                    sock.shutdown(socket.SHUT_WR)
                await _until(lambda: ("?", "timeout") in outcomes, "a timeout logged")
                await _until(lambda: not srv._active, "the connection let go")
                assert _reset_or_cut(sock)
            finally:
                sock.close()
            assert outcomes.count((f"SEP{SLOW_MAC}", "registered")) >= 10, outcomes[:3]  # served until then
            assert f"{logged}" in caplog.text and "connection aborted" in caplog.text

    asyncio.run(main())


def test_http_close_with_a_response_the_client_never_takes_is_aborted_after_idle_timeout(
        caplog: pytest.LogCaptureFixture) -> None:
    # a 40 KB file (below asyncio's 64 KiB high-water mark: its write does not wait) then a 404 that
    # closes: the kernel holds part of the file, the rest stays unsent when the connection ends
    files = {"forty.bin": bytes(40_000)}

    async def main() -> None:
        async with HttpServer(files, HOST, 0, idle_timeout=READ_TIMEOUT) as srv:
            sock = await connect_not_reading(srv.port)
            try:
                await _until(lambda: len(srv._writers) == 1, "the connection accepted")
                small_send_buffer(next(iter(srv._writers)))
                await _send_bounded(sock, b"GET /forty.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                                          b"GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                await _until(lambda: "connection aborted" in caplog.text, "the close cut")
                await _until(lambda: not srv._writers, "the connection let go")
                assert _reset_or_cut(sock)
            finally:
                sock.close()
        assert "did not take the last" in caplog.text and "within 0.5s of the end" in caplog.text

    caplog.set_level(logging.WARNING, logger="phoneemu.net.http")
    asyncio.run(main())
