"""A silent flood and its view from the client side, for the tests of a full server making room
(:mod:`phoneemu.net._room`: :class:`phoneemu.net.tls.TlsServer`, the loop TVS). Real sockets over
loopback: :data:`FLOODER` and :data:`OTHER` are other addresses of the loopback interface (Linux)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from phoneemu.net.tls import client_context_verify_after_handshake, open_tls_connection
from phoneemu.protocols import tvs

HOST = "127.0.0.1"  # the server's address (and the newcomers')
FLOODER = "127.0.0.2"
OTHER = "127.0.0.3"

#: a client's end of a connection
Held = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A connection handler answering the first 5 bytes with themselves."""
    writer.write(await reader.readexactly(5))
    await writer.drain()


async def echo_of(held: Held) -> bytes:
    """``hello`` written on the connection ``held``, :func:`echo`'s answer read (5 s at most)."""
    reader, writer = held
    writer.write(b"hello")
    return await asyncio.wait_for(reader.readexactly(5), 5)


async def silent_connections(port: int, source: str, count: int) -> list[Held]:
    """``count`` TCP connections from ``source`` to :data:`HOST` ``port`` that never send a byte (no
    ClientHello)."""
    return [await asyncio.open_connection(HOST, port, local_addr=(source, 0)) for _ in range(count)]


async def handshaken(port: int, count: int) -> list[Held]:
    """``count`` TLS clients from :data:`HOST` to ``port`` past their handshake (5 s at most each; the
    server's certificate not checked)."""
    return [await open_tls_connection(HOST, port, client_context_verify_after_handshake(), timeout=5)
            for _ in range(count)]


async def tvs_asked(port: int, request: bytes) -> Held:
    """A TLS client from :data:`HOST` to the TVS on ``port`` that sent ``request`` (an encoded TVS frame) and
    read its whole reply: a connection that asked, left open (5 s at most each step)."""
    reader, writer = await open_tls_connection(HOST, port, client_context_verify_after_handshake(), timeout=5)
    writer.write(request)
    decoder = tvs.FrameDecoder()
    for _ in range(64):  # the reply: a few records at most
        if decoder.feed(await asyncio.wait_for(reader.read(65536), 5)):
            return reader, writer
    raise AssertionError("no reply")


def close_all(held: list[Held]) -> None:
    for _r, writer in held:
        writer.close()


async def was_cut(reader: asyncio.StreamReader) -> bool:
    """Whether the server has closed this connection (end of stream or reset; 0.05 s waited for a byte)."""
    try:
        return await asyncio.wait_for(reader.read(1), 0.05) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def asked_ones_kept(srv: Any, handler: Any, known: bytes, device: str) -> None:
    """A TVS server ``srv`` with room for two, full with two connections that each had an answer and stay
    open, idle, past its grace: a query waits in the listen queue (none is closed for it, ``srv.evicted``
    stays 0) and gets in when one of them ends (``handler``: its TvsHandler; ``known``: a certificate the
    TVS knows, asked of it for ``device``)."""
    from phoneemu.net.tvs_client import tvs_verify

    request = tvs.encode(tvs.verify_request(7, device, known))
    kept = [await asyncio.wait_for(tvs_asked(srv.port, request), 10) for _ in range(2)]
    late = asyncio.ensure_future(tvs_verify([(HOST, srv.port)], device, known, timeout=10))
    try:
        await asyncio.sleep(0.6)
        assert not late.done() and srv.evicted == 0 and srv.connections == 2
        kept[0][1].close()
        assert (await asyncio.wait_for(asyncio.shield(late), 5)).valid
        assert srv.evicted == 0 and handler.answered == 3
    finally:
        close_all(kept)
        with contextlib.suppress(Exception):
            await late


async def echoed(port: int) -> bytes:
    """One TLS client from :data:`HOST`: handshake, ``hello``, its echo (the connection then closed)."""
    [client] = await handshaken(port, 1)
    try:
        return await echo_of(client)
    finally:
        client[1].close()


async def most_held_address_gives_way(srv: Any, known: bytes, device: str, *, many: int, wait: float) -> None:
    """The TVS server ``srv`` with room for ``many`` + 1: one silent connection from :data:`OTHER`, then
    ``many`` from :data:`FLOODER` filling it; ``wait`` seconds on (all past their grace), a query for
    ``device`` (``known``: a certificate the TVS knows) takes the place of FLOODER's oldest, not of OTHER's
    older one."""
    from phoneemu.net.tvs_client import tvs_verify
    from tests.polling import poll_until

    alone = await silent_connections(srv.port, OTHER, 1)
    await poll_until(lambda: srv.connections == 1, "127.0.0.3 first", within=5, every=0.01)
    flood: list[Held] = []

    def each_in() -> bool:
        return bool(srv.connections == 1 + len(flood))

    try:
        for _ in range(many):  # one at a time: a threaded server's workers may take two at once in either
            flood += await silent_connections(srv.port, FLOODER, 1)  # order (its clock: its own)
            await poll_until(each_in, "each one in", within=5, every=0.01)
        await asyncio.sleep(wait)
        reply = await tvs_verify([(HOST, srv.port)], device, known, timeout=8)
        assert reply.valid and srv.evicted == 1
        assert [await was_cut(r) for r, _w in alone + flood] == [False, True] + [False] * (many - 1)
    finally:
        close_all(alone + flood)
