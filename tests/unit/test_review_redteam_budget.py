"""Review of cb5970e (phoneemu.net.tls ``ConnectionBudget``): a place of the shared budget is given back on
every way a connection ends — handler done, handler exception, TLS handshake failure or time-out,
cancellation by the server's close (in the handler or in the handshake) — on the TLS path and the plain
TCP path alike; a refused connection takes none. (A guard of the accounting the lab's TLS/TCP listeners
rely on: a place lost per connection would leave CAPF and the registrars refusing every phone after
enough of them.)"""

from __future__ import annotations

import asyncio
import ssl

from phoneemu.net.tls import ConnectionBudget, TlsServer
from tests.helpers import run, self_signed_server_context

HOST = "127.0.0.1"


async def _greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"hi")
    await writer.drain()
    await reader.read(16)


async def _fail(_reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
    raise RuntimeError("handler failed")


async def _hold(_reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)  # cancelled by the server's close


def _client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _places_back(budget: ConnectionBudget, want: int = 0) -> int:
    """``budget.open`` once it is ``want``, or after 2 s (each connection's end is a task's end)."""
    for _ in range(100):
        if budget.open == want:
            break
        await asyncio.sleep(0.02)
    return budget.open


async def _talk(port: int, tls: bool) -> bytes:
    reader, writer = await asyncio.open_connection(HOST, port, ssl=_client_context() if tls else None)
    try:
        return await asyncio.wait_for(reader.read(2), 5)
    finally:
        writer.close()


def test_every_ending_gives_its_place_back() -> None:
    async def main() -> None:
        ctx = self_signed_server_context("budget", 1)
        budget = ConnectionBudget(2)
        for server_ctx in (ctx, None):
            for handler in (_greet, _fail):
                async with TlsServer(handler, server_ctx, HOST, 0, budget=budget) as srv:
                    for _ in range(4):  # twice the budget: each place came back before the next
                        await _talk(srv.port, tls=server_ctx is not None)
                        assert await _places_back(budget) == 0
                    assert srv.connections == 4 and srv.refused == 0
        async with TlsServer(_greet, ctx, HOST, 0, budget=budget, handshake_timeout=0.3) as srv:
            _r, garbage = await asyncio.open_connection(HOST, srv.port)
            garbage.write(b"GET / HTTP/1.1\r\n\r\n")  # not a ClientHello: handshake failed
            _r, silent = await asyncio.open_connection(HOST, srv.port)  # no ClientHello: timed out
            assert await _places_back(budget) == 0
            assert srv.handshake_failures == 2
            garbage.close()
            silent.close()

    run(main(), limit=30)


def test_a_refused_connection_takes_no_place_and_a_close_gives_them_back() -> None:
    async def main() -> None:
        ctx = self_signed_server_context("budget", 2)
        budget = ConnectionBudget(3)
        holder = TlsServer(_hold, ctx, HOST, 0, budget=budget, handshake_timeout=20)
        await holder.start()
        try:
            held = [await asyncio.open_connection(HOST, holder.port, ssl=_client_context()) for _ in range(2)]
            held.append(await asyncio.open_connection(HOST, holder.port))  # no ClientHello: in its handshake
            assert await _places_back(budget, 3) == 3
            async with TlsServer(_greet, None, HOST, 0, budget=budget) as plain:
                assert await _talk(plain.port, tls=False) == b""  # closed at once: the other server's
                assert plain.refused == 1 and budget.open == 3
                await holder.close()  # cancels the held connections' tasks, the one in its handshake too
                assert await _places_back(budget) == 0
                assert await _talk(plain.port, tls=False) == b"hi"
            for _reader, writer in held:
                writer.close()
        finally:
            await holder.close()
        assert await _places_back(budget) == 0

    run(main(), limit=30)
