"""``boot``'s word on a slow file over a real loopback TFTP transfer
(:mod:`phoneemu.commands._watched_fetch`): the fetcher the phone boots through counts the bytes of the file
under way (``TftpFetcher.bytes_so_far()``, the transfer's own count handed over once by ``tftp_get``'s
``on_start``; ``HttpThenTftpFetcher``'s its TFTP fetcher's), so a file whose blocks are arriving is said
downloading with its bytes so far. Was "still waiting for NAME ... a server that does not answer costs each
file its tries of --timeout": nothing implemented ``bytes_so_far``.

The server is scripted: it sends the first two 512-byte blocks, then holds the last one back until the
watcher has spoken. The watcher's mark (:data:`SLOW_S`, here 0.01 s) is held until the server has had the
ACK of block 2 (the client counts a block before it acknowledges it), so what the watcher reads does not
depend on how fast the machine is; its own time is not what is tested here.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from phoneemu.commands._watched_fetch import Ports, WatchedFetcher
from phoneemu.net.fetch import HttpFetcher, HttpThenTftpFetcher, TftpFetcher
from phoneemu.net.tftp_client import TftpClientPool, tftp_get
from phoneemu.net.tftp_codec import ack_packet, data_packet

NAME = "sip88xx.14-2-1-0001-14.loads"
HOST = "127.0.0.1"
BLOCKS = [b"a" * 512, b"b" * 512, b"c" * 100]  # the last one short: the end of the file
FILE = b"".join(BLOCKS)
HELD_S = 5.0  # the longest the server holds the last block back (the watcher never spoke: the test fails)
TIMEOUT_S = 10.0  # the client's per-packet timeout, no retry: none on loopback, a test gone wrong ends


class _HoldingServer(asyncio.DatagramProtocol):
    """One RRQ answered from the listening socket: DATA 1 and 2 at once, DATA 3 once ``release`` is set;
    ``second_acked`` is set when the ACK of block 2 has come (the client has counted 1024 bytes)."""

    def __init__(self) -> None:
        self.transport: Any = None  # the endpoint's datagram transport
        self.release = asyncio.Event()
        self.second_acked = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        opcode = int.from_bytes(data[:2], "big")
        if opcode == 1:  # RRQ
            self._send(1, addr)
        elif opcode == 4 and data == ack_packet(1):
            self._send(2, addr)
        elif opcode == 4 and data == ack_packet(2) and not self.second_acked.is_set():
            self.second_acked.set()
            self.tasks.append(asyncio.get_running_loop().create_task(self._last_block(addr)))

    def _send(self, block: int, addr: Any) -> None:
        assert self.transport is not None
        self.transport.sendto(data_packet(block, BLOCKS[block - 1]), addr)

    async def _last_block(self, addr: Any) -> None:
        try:
            await asyncio.wait_for(self.release.wait(), HELD_S)
        finally:
            self._send(3, addr)


async def _served(run: Callable[[_HoldingServer, int], Any]) -> Any:
    """``run(server, port)`` with :class:`_HoldingServer` listening on loopback."""
    loop = asyncio.get_running_loop()
    transport, server = await loop.create_datagram_endpoint(_HoldingServer, local_addr=(HOST, 0))
    try:
        return await run(server, transport.get_extra_info("sockname")[1])
    finally:
        transport.close()
        for task in server.tasks:
            await task


@pytest.fixture
def mark_after_two_blocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[_HoldingServer]]:
    """The watcher's mark held until the server (appended to the list) has had the ACK of block 2."""
    servers: list[_HoldingServer] = []
    speak = WatchedFetcher._still_waiting

    def held_mark(watcher: WatchedFetcher, name: str) -> None:
        async def after_two_blocks() -> None:
            await asyncio.wait_for(servers[0].second_acked.wait(), HELD_S)
            speak(watcher, name)

        servers[0].tasks.append(asyncio.get_running_loop().create_task(after_two_blocks()))

    monkeypatch.setattr(WatchedFetcher, "_still_waiting", held_mark)
    yield servers


def _said_of(make_fetcher: Callable[[int], Any], ports_of: Callable[[int], Ports],
             servers: list[_HoldingServer]) -> tuple[list[str], Any]:
    """What the watcher says of one fetch of :data:`NAME` through ``make_fetcher(port)``, and the fetcher."""
    said: list[str] = []
    fetcher: list[Any] = []

    async def run(server: _HoldingServer, port: int) -> None:
        servers.append(server)
        fetcher.append(make_fetcher(port))

        def tell(text: str) -> None:
            said.append(text)
            server.release.set()

        watched = WatchedFetcher(fetcher[0], ports_of(port), tell=tell, slow_s=0.01)
        try:
            assert await watched.fetch(NAME) == FILE
        finally:
            pool = getattr(fetcher[0], "pool", None)
            if pool is not None:
                await pool.close()

    asyncio.run(_served(run))
    return said, fetcher[0]


def _downloading(port: int) -> list[str]:
    return [f"still downloading {NAME} after 0.01 s: 1024 bytes so far over TFTP {HOST}:{port} "
            "(Ctrl-C stops)"]


def test_a_tftp_download_under_way_is_said_with_its_bytes_so_far(
        mark_after_two_blocks: list[_HoldingServer]) -> None:
    ports: list[int] = []

    def tftp(port: int) -> TftpFetcher:
        ports.append(port)
        return TftpFetcher(HOST, port, timeout=TIMEOUT_S, retries=0)

    said, fetcher = _said_of(tftp, lambda port: Ports(HOST, port, None), mark_after_two_blocks)
    assert said == _downloading(ports[0])
    assert fetcher.bytes_so_far() is None  # nothing under way any more


@pytest.fixture
def refusing_http_port() -> Iterator[int]:
    """A loopback TCP port bound but not listening: a connection to it is refused (HTTP fails at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        yield sock.getsockname()[1]


def test_the_tftp_fallback_of_a_cp8861_counts_its_download(mark_after_two_blocks: list[_HoldingServer],
                                                           refusing_http_port: int) -> None:
    ports: list[int] = []

    def http_then_tftp(port: int) -> HttpThenTftpFetcher:
        ports.append(port)
        return HttpThenTftpFetcher(HttpFetcher(HOST, refusing_http_port, timeout=TIMEOUT_S),
                                   TftpFetcher(HOST, port, timeout=TIMEOUT_S, retries=0))

    said, fetcher = _said_of(http_then_tftp, lambda port: Ports(HOST, port, refusing_http_port),
                             mark_after_two_blocks)
    assert fetcher.last_fallback is not None and fetcher.last_fallback.kind == "unreachable"
    assert said == _downloading(ports[0])
    assert fetcher.bytes_so_far() is None


def test_a_pooled_download_is_not_counted(mark_after_two_blocks: list[_HoldingServer]) -> None:
    """A fleet's phones share a pool and pay nothing for the count: the watcher (never used by a fleet) says
    it is still waiting."""
    def pooled(port: int) -> TftpFetcher:
        pool = TftpClientPool(max_sockets=1, quarantine_s=0)
        return TftpFetcher(HOST, port, timeout=TIMEOUT_S, retries=0, pool=pool)

    said, fetcher = _said_of(pooled, lambda port: Ports(HOST, port, None), mark_after_two_blocks)
    assert len(said) == 1 and said[0].startswith(f"still waiting for {NAME} after 0.01 s")
    assert fetcher.bytes_so_far() is None


def test_tftp_get_hands_over_its_count_once_per_transfer() -> None:
    readers: list[Callable[[], int]] = []
    seen: list[int] = []

    async def run(server: _HoldingServer, port: int) -> bytes:
        async def watch() -> None:
            await asyncio.wait_for(server.second_acked.wait(), HELD_S)
            seen.append(readers[0]())
            server.release.set()

        watching = asyncio.get_running_loop().create_task(watch())
        data = await tftp_get(HOST, port, NAME, timeout=TIMEOUT_S, retries=0, on_start=readers.append)
        await watching
        return data

    assert asyncio.run(_served(run)) == FILE
    assert len(readers) == 1
    assert seen == [1024]  # the first two blocks, the last held back
    assert readers[0]() == len(FILE)  # the whole file once it has come
