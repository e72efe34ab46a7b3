"""``net._listen.serving`` cancelled with a connection already waiting in the listen queue (module rules:
a start that does not return closes what it bound).

Pinned behaviour (Python 3.11 asyncio): cancelled at any of its awaits, ``serving`` has accepted no
connection yet — the accept callback asyncio queues in the iteration after ``start_serving`` runs after
``serving``'s own step, and the close cancels it — so closing the listener ends the waiting connection
at once (the peer sees it end, never a hang) and frees the port. Started, the server is the caller's."""

from __future__ import annotations

import asyncio
import socket

import pytest

from phoneemu.net._listen import serving, tcp_listener
from tests.helpers import port_free, run

HOST = "127.0.0.1"


def _ended(client: socket.socket) -> bool:
    """Whether the peer sees its connection end (end of stream or reset) within 2 s."""
    client.settimeout(2.0)
    try:
        return client.recv(16) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def _start(kind: str, sock: socket.socket, accepted: list[object]) -> asyncio.Server:
    async def handler(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        writer.close()

    if kind == "streams":
        return await serving(asyncio.start_server(handler, sock=sock, start_serving=False), sock)
    loop = asyncio.get_running_loop()
    return await serving(loop.create_server(asyncio.Protocol, sock=sock, start_serving=False), sock)


@pytest.mark.parametrize("kind", ["streams", "protocol"])
def test_a_start_cancelled_with_a_connection_waiting_ends_it_and_frees_the_port(kind: str) -> None:
    """Cancelled one, two, three loop iterations after it began: every cancel that lands (here the
    first: ``start_serving``'s one ``sleep(0)``; the others come after the start returned) ends the
    waiting connection and frees the port; none of them leaves an accepted connection behind."""
    async def attempt(hops: int) -> bool:
        sock = tcp_listener(HOST, 0, backlog=8)
        port = sock.getsockname()[1]
        accepted: list[object] = []
        with socket.create_connection((HOST, port), timeout=5) as client:
            start = asyncio.ensure_future(_start(kind, sock, accepted))
            for _ in range(hops):
                await asyncio.sleep(0)
            start.cancel()
            try:
                server = await start
            except asyncio.CancelledError:
                for _ in range(3):
                    await asyncio.sleep(0)
                assert _ended(client) and accepted == []
                assert port_free(HOST, port)
                return True
        for _ in range(5):  # started: the caller's; its connection accepted and ended (the client left)
            await asyncio.sleep(0.01)
        server.close()
        await server.wait_closed()
        return False

    async def main() -> list[bool]:
        return [await attempt(hops) for hops in (1, 2, 3)]

    assert run(main(), limit=10) == [True, False, False]
