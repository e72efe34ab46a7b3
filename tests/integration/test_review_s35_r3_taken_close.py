"""Review R3 of the lab's "client still taking what we sent" rule (:mod:`phoneemu.net._taken`): what
happens when the wait is given up on, and at the server's own close.

* A cut must not cancel the writer's own close future: the SIP registrar cut a client at its close, then
  :class:`phoneemu.net.tls.TlsServer` closed the same writer and its ``wait_closed`` raised CancelledError
  (asyncio logged "Exception in callback" for the plain-TCP connection task).
* The server's close ends every connection: one whose client reads slowly but steadily (far above the
  floor) held ``TlsServer.close()`` for as long as it read, or, its close under way, was left sending
  after ``close()`` returned with nothing to cut it.

Over real loopback sockets, the client's receive buffer small (:func:`tests.sip_helpers.connect_not_reading`)
and the server's send buffer small, so most of what the handler writes waits in the transport's buffer.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from phoneemu.net.tls import TlsServer
from tests.sip_helpers import (
    SLOW_HOST,
    SLOW_MAC,
    connect_not_reading,
    lab_registrar,
    pipelined_register,
    small_send_buffer,
)
from tests.slow_reader_helpers import http_close_mid_response, reading_steadily

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
ANSWER = 2 * 1024 * 1024  # what the handler writes: ~50 s at the steady reader's pace
CLOSE_BOUND_S = 3.0  # the server's close must return within this (it returned after ~50 s, or never)
END_BOUND_S = 3.0  # and the connection must end within this after it
#: the longest one read of the steady reader waits: above END_BOUND_S, so that a connection left open and
#: silent after the close is "still open", not a read given up ("cut")
RECV_WAIT_S = 5.0


def _catch_loop_errors(loop: asyncio.AbstractEventLoop) -> list[dict[str, Any]]:
    """What the loop's exception handler is given from now on."""
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    return errors


async def _close_timed(srv: TlsServer, reading: asyncio.Task[tuple[int, str]]) -> tuple[float, str]:
    """Close ``srv`` (:data:`CLOSE_BOUND_S` s at most) while a steady reader's ``reading`` runs: (how long
    the close took, how the reader's connection ended, :data:`END_BOUND_S` s at most after it)."""
    began = time.monotonic()
    try:
        await asyncio.wait_for(srv.close(), CLOSE_BOUND_S)
    except TimeoutError:
        return CLOSE_BOUND_S, "close not returned"
    took = time.monotonic() - began
    done, _ = await asyncio.wait((reading,), timeout=END_BOUND_S)
    return took, reading.result()[1] if done else "still open after the server's close"


def _answer(then: str) -> Handler:
    """A handler that writes :data:`ANSWER` bytes (no drain: most stay in the transport's buffer), its
    socket's send buffer small, then ends (``then`` "end") or waits for the client's next bytes, which
    never come ("read": the server's close cancels it there)."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        small_send_buffer(writer)
        writer.write(bytes(ANSWER))
        if then == "read":
            await reader.read(1)
    return handler


def _close_with_a_steady_reader(then: str) -> tuple[float, str, list[dict[str, Any]]]:
    """Start a server with :func:`_answer` (``then``), a steady reader on it, close the server after
    0.5 s: (how long the close took, how the reader's connection ended, the loop's errors)."""
    async def main() -> tuple[float, str, list[dict[str, Any]]]:
        errors = _catch_loop_errors(asyncio.get_running_loop())
        srv = await TlsServer(_answer(then), None, SLOW_HOST, 0, name="tvs").start()
        sock = await connect_not_reading(srv.port)
        try:
            async with reading_steadily(sock, recv_wait=RECV_WAIT_S) as reading:
                await asyncio.sleep(0.5)
                took, ended = await _close_timed(srv, reading)
                return took, ended, errors
        finally:
            sock.close()

    return asyncio.run(main())


def test_the_servers_close_ends_a_connection_whose_close_serves_a_steady_reader() -> None:
    took, ended, errors = _close_with_a_steady_reader("end")
    assert ended != "still open after the server's close", (took, ended)
    assert ended.startswith(("cut", "end of stream")), ended
    assert not errors, errors  # (was: CancelledError out of the connection's task)


def test_the_servers_close_does_not_wait_for_a_steady_reader_of_a_cancelled_handler() -> None:
    took, ended, errors = _close_with_a_steady_reader("read")
    assert ended != "close not returned", (took, ended)
    assert took < CLOSE_BOUND_S and ended.startswith(("cut", "end of stream")), (took, ended)
    assert not errors, errors


def test_a_registrar_cut_at_its_close_leaves_the_servers_close_quiet() -> None:
    """The registrar's close cuts a client that stops reading (its own rule), then the server closes the
    same writer: no CancelledError from the cut's give-up (was: asyncio's "Exception in callback")."""
    outcomes: list[tuple[str, str]] = []
    registrar = lab_registrar({SLOW_MAC: (None, None)}, outcomes)
    registrar.read_timeout = 0.3

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        small_send_buffer(writer)
        writer.transport.set_write_buffer_limits(high=1 << 20)  # no drain: the answers wait for the close
        await registrar(reader, writer)

    async def main() -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        errors = _catch_loop_errors(loop)
        async with TlsServer(handler, None, SLOW_HOST, 0, name="sip") as srv:
            sock = await connect_not_reading(srv.port)
            try:  # ~95 KB of answers, never read; our side ended: the registrar closes with them unsent
                await loop.sock_sendall(sock, b"".join(pipelined_register(n) for n in range(1, 451)))
                sock.shutdown(socket.SHUT_WR)
                for _ in range(200):  # bounded: 10 s
                    if ("?", "timeout") in outcomes and not srv._active:
                        break
                    await asyncio.sleep(0.05)
                assert not srv._active, "the connection not let go within 10 s"
                await asyncio.sleep(0.05)  # the task's done callbacks
            finally:
                sock.close()
        return errors

    errors = asyncio.run(main())
    assert ("?", "timeout") in outcomes, outcomes[-3:]
    assert not errors, errors


def test_the_servers_close_does_not_wait_for_a_registrars_steady_reader() -> None:
    """The registrar's close (its own rule, in the handler) at the server's close: a client reading its
    answers slowly but steadily does not hold ``TlsServer.close()`` (was: for as long as it read)."""
    outcomes: list[tuple[str, str]] = []
    registrar = lab_registrar({SLOW_MAC: (None, None)}, outcomes)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        small_send_buffer(writer)
        writer.transport.set_write_buffer_limits(high=1 << 22)  # no drain: the answers wait unsent
        await registrar(reader, writer)

    async def main() -> tuple[float, str, list[dict[str, Any]]]:
        loop = asyncio.get_running_loop()
        errors = _catch_loop_errors(loop)
        srv = await TlsServer(handler, None, SLOW_HOST, 0, name="sip").start()
        sock = await connect_not_reading(srv.port)
        try:
            async with reading_steadily(sock, recv_wait=RECV_WAIT_S) as reading:
                # ~630 KB of answers, ~15 s at the reader's pace; our side kept open
                await loop.sock_sendall(sock, b"".join(pipelined_register(n) for n in range(1, 3001)))
                for _ in range(200):  # bounded: 10 s
                    if len(outcomes) >= 3000:
                        break
                    await asyncio.sleep(0.05)
                took, ended = await _close_timed(srv, reading)
                return took, ended, errors
        finally:
            sock.close()

    took, ended, errors = asyncio.run(main())
    assert len(outcomes) >= 3000, len(outcomes)
    assert took < CLOSE_BOUND_S and ended.startswith(("cut", "end of stream")), (took, ended)
    assert not errors, errors


def test_the_http_servers_close_ends_a_response_a_steady_reader_is_taking() -> None:
    """``HttpServer.close()`` closes every connection: a client reading a large file slowly but steadily
    (far above the floor) is not served on after it (was: its handler went on writing, the descriptor
    held for as long as the client read)."""
    async def main() -> tuple[str, list[dict[str, Any]]]:
        errors = _catch_loop_errors(asyncio.get_running_loop())
        return await http_close_mid_response(ANSWER, end_within=END_BOUND_S), errors

    ended, errors = asyncio.run(main())
    assert ended.startswith(("cut", "end of stream")), ended
    assert not errors, errors
