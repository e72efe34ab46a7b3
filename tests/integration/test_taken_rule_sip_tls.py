"""The lab's one rule for a client still taking what a server sent it (:mod:`phoneemu.net._taken`), in the
SIP registrar and in :class:`phoneemu.net.tls.TlsServer`'s close: a client reading slowly but steadily is
served, one that stops is still cut.

* SIP (:mod:`phoneemu.lab.sip_service`): with a moderate server send buffer, Linux takes more of the
  transport's buffer only once a third of its own is free, which a steady reader needs longer than
  ``read_timeout`` for — was cut, the registrar measuring the transport's buffer alone in fixed windows.
* TLS close (TVS, CAPF, HTTPS, SIP over TLS): a handler that ends with a large answer unsent — was: all of
  it had to be taken within ``CLOSE_WAIT_S`` (1 s), so a client reading it at some tens of KB/s was cut.

Over real loopback sockets, the client's receive buffer small (:func:`tests.sip_helpers.connect_not_reading`)
and the server's send buffer set (loopback's default holds megabytes: the server would wait for nothing).
The client (:mod:`tests.slow_reader_helpers`) reads 2 KiB every 50 ms, about 40 KB/s: far above the floors
(``TAKEN_PER_WAIT`` 256 B a ``read_timeout``, ``TAKEN_PER_IDLE`` 1 KiB a ``CLOSE_WAIT_S``) however loaded
the machine. No elapsed time is asserted of the steady reader: that all came and nothing was cut is.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable

import pytest

from phoneemu.net.tls import CLOSE_WAIT_S, TlsServer
from tests.helpers import self_signed_server_context
from tests.polling import poll_until
from tests.sip_helpers import (
    SLOW_HOST,
    SLOW_MAC,
    connect_not_reading,
    lab_registrar,
    pipelined_register,
    small_send_buffer,
)
from tests.slow_reader_helpers import (
    PIECE,
    RECV_WAIT_S,
    STOP_AFTER,
    Recv,
    raw_recv,
    read_steadily,
    seconds_until_let_go,
)

WAIT_S = 5.0  # how long a test waits for the server to let a connection go (polled)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


# --------------------------------------------------------------------------- SIP: a moderate send buffer
#: the registrar's ``read_timeout``: well under the ~0.6 s the kernel's refill waits at the client's rate
#: (the old rule cut the steady reader every run, not now and then)
READ_TIMEOUT = 0.3
#: the registrar's socket send buffer (the kernel doubles it): it holds some 65 KB of answers, and a third
#: of it (what must be free before the kernel takes more) is more than the client takes in a
#: ``read_timeout``
MODERATE_BUFFER = 49152
#: the transport's high-water mark in the drain case: asyncio's 64 KiB on top of the kernel's would make
#: the test long (the client reads everything)
HIGH_WATER = 8192
REGISTERS = 450  # ~95 KB of answers (~210 B each): more than the kernel holds, with a drain or a close


def _moderate_buffer_registrar(*, high_water: int | None = None) -> tuple[Handler, list[tuple[str, str]]]:
    """A connection handler serving a lab registrar that knows :data:`SLOW_MAC` and waits
    :data:`READ_TIMEOUT`, its socket's send buffer :data:`MODERATE_BUFFER` (its transport's high-water
    mark ``high_water`` when given); and its outcomes."""
    outcomes: list[tuple[str, str]] = []
    registrar = lab_registrar({SLOW_MAC: (None, None)}, outcomes)
    registrar.read_timeout = READ_TIMEOUT

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MODERATE_BUFFER)
        if high_water is not None:
            writer.transport.set_write_buffer_limits(high=high_water)
        await registrar(reader, writer)

    return handler, outcomes


async def _pipeline_and_read(sock: socket.socket, *, then_close: bool,
                             stop_after: int | None = None) -> tuple[int, str]:
    """Send :data:`REGISTERS` pipelined REGISTERs on ``sock`` (then end our side, when ``then_close``)
    and read the answers steadily until the last came (or ``stop_after`` bytes); (bytes read, how it
    ended)."""
    loop = asyncio.get_running_loop()
    sending = asyncio.ensure_future(loop.sock_sendall(
        sock, b"".join(pipelined_register(n) for n in range(1, REGISTERS + 1))))
    if then_close:
        sending.add_done_callback(lambda _: sock.shutdown(socket.SHUT_WR))
    last = f"CSeq: {REGISTERS} REGISTER".encode()
    try:
        return await read_steadily(raw_recv(sock), lambda got: last in got[-len(last) - PIECE:],
                                   stop_after=stop_after)
    finally:
        sending.cancel()


#: how the registrar waits for the client: answers' drains (the client keeps its side open), or its close
#: (the client ends its side once all is sent: the registrar closes with answers unsent)
SIP_WAITS = {"drain": (HIGH_WATER, False), "close": (None, True)}


@pytest.mark.parametrize("waits", list(SIP_WAITS))
def test_sip_a_steady_reader_with_a_moderate_send_buffer_is_not_cut(waits: str) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("the kernel's send queue is read on Linux only (SIOCOUTQ)")
    high_water, then_close = SIP_WAITS[waits]
    handler, outcomes = _moderate_buffer_registrar(high_water=high_water)

    async def main() -> tuple[int, str]:
        async with TlsServer(handler, None, SLOW_HOST, 0, name="sip") as srv:
            sock = await connect_not_reading(srv.port)
            try:
                return await _pipeline_and_read(sock, then_close=then_close)
            finally:
                sock.close()

    read, ended = asyncio.run(main())
    assert ended == "all came", (read, ended, [o for o in outcomes if o[1] == "timeout"])
    assert outcomes.count((f"SEP{SLOW_MAC}", "registered")) == REGISTERS
    assert ("?", "timeout") not in outcomes


def test_sip_a_reader_that_stops_is_still_cut_with_a_moderate_send_buffer(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="phoneemu.lab.sip")
    handler, outcomes = _moderate_buffer_registrar(high_water=HIGH_WATER)

    async def main() -> tuple[int, str]:
        async with TlsServer(handler, None, SLOW_HOST, 0, name="sip") as srv:
            sock = await connect_not_reading(srv.port)
            try:  # held open, not read, until the server lets it go
                ended = await _pipeline_and_read(sock, then_close=False, stop_after=STOP_AFTER)
                await poll_until(lambda: not srv._active, "the connection let go", within=WAIT_S, every=0.02)
                return ended
            finally:
                sock.close()

    read, ended = asyncio.run(main())
    assert ended == "stopped", (read, ended)
    assert ("?", "timeout") in outcomes, outcomes[-3:]
    # cut while an answer drains, or (a loaded machine: the handler's read timed out first) at its close
    assert "not taken within 0.3s" in caplog.text and "connection aborted" in caplog.text, caplog.text


# --------------------------------------------------------------------------- TLS server: the close
ANSWER = 72 * 1024  # the handler's last answer, written whole then the connection ended: ~1.8 s to read


def _answer_then_end(size: int) -> Handler:
    """A handler that writes ``size`` bytes (no drain: most stay unsent) and ends, its socket's send
    buffer small."""
    async def handler(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        small_send_buffer(writer)
        writer.write(bytes(size))
    return handler


class _TlsClient:
    """A TLS client over a socket whose reads the test paces: ``SSLObject`` on memory BIOs (asyncio's own
    TLS reads ahead as fast as the bytes come)."""

    def __init__(self, sock: socket.socket) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = sock
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self._in, self._out, server_side=False)

    async def handshake(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(20):  # bounded: a handshake is a few flights
            try:
                self.obj.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            if self._out.pending:
                await loop.sock_sendall(self.sock, self._out.read())
            if done:
                return
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), RECV_WAIT_S)
            if not data:
                raise ConnectionError("closed in the handshake")
            self._in.write(data)
        raise AssertionError("handshake not done in 20 flights")

    async def recv(self) -> bytes | None:
        """The plaintext of one read of at most :data:`PIECE` bytes of the socket (b"": no whole record
        yet; None at the end: of the stream, or the server's close_notify)."""
        data = await asyncio.get_running_loop().sock_recv(self.sock, PIECE)
        if not data:
            return None
        self._in.write(data)
        plain = bytearray()
        for _ in range(100):  # bounded: a read holds few records
            try:
                chunk = self.obj.read(65536)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return bytes(plain) or None
            if not chunk:
                break
            plain += chunk
        return bytes(plain)


async def _connect(port: int, over_tls: bool) -> tuple[socket.socket, Recv]:
    """A slow client's socket to ``port`` and its paced read (:class:`_TlsClient` when ``over_tls``)."""
    sock = await connect_not_reading(port)
    if not over_tls:
        return sock, raw_recv(sock)
    client = _TlsClient(sock)
    await client.handshake()
    return sock, client.recv


@pytest.mark.parametrize("over_tls", [True, False], ids=["tls", "tcp"])
def test_a_tls_server_close_serves_a_steady_reader_the_end_of_its_answer(
        over_tls: bool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="phoneemu.net.tls")
    ctx = self_signed_server_context("lab", 1) if over_tls else None

    async def main() -> tuple[int, str]:
        async with TlsServer(_answer_then_end(ANSWER), ctx, SLOW_HOST, 0, name="tvs") as srv:
            sock, recv = await _connect(srv.port, over_tls)
            try:
                return await read_steadily(recv, lambda got: len(got) >= ANSWER)
            finally:
                sock.close()

    read, ended = asyncio.run(main())
    assert ended == "all came", (read, ended, caplog.text)
    assert "connection aborted" not in caplog.text


@pytest.mark.parametrize("over_tls", [True, False], ids=["tls", "tcp"])
def test_a_tls_server_close_still_cuts_a_reader_that_stops(
        over_tls: bool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="phoneemu.net.tls")
    ctx = self_signed_server_context("lab", 1) if over_tls else None

    async def main() -> float:
        async with TlsServer(_answer_then_end(ANSWER), ctx, SLOW_HOST, 0, name="tvs") as srv:
            sock, recv = await _connect(srv.port, over_tls)
            try:
                return await seconds_until_let_go(recv, lambda: not srv._active, within=WAIT_S)
            finally:
                sock.close()

    took = asyncio.run(main())
    assert "did not take the last" in caplog.text and "connection aborted" in caplog.text, caplog.text
    assert took < 2 * CLOSE_WAIT_S + 1.0, took  # a bound (cut ~1.25 CLOSE_WAIT_S after its last; load)
