"""TftpClientPool and tftp_get: a socket not reused keeps its port for the server's retry budget
(quarantine; tftp_get's in one quarantine per event loop).

The kernel may give a freed UDP port to the next socket of the same host; a server still sending the
abandoned transfer's DATA 1 to that port would then answer the new request with the wrong file. The
tests force that reuse by binding the next socket to the freed port (what the kernel may do).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable

import pytest

from phoneemu.errors import TransportError
from phoneemu.net import tftp_client
from phoneemu.net.tftp import TftpClientPool
from phoneemu.net.tftp_codec import Ack, Data, decode, encode
from tests.helpers import run_within
from tests.integration.test_tftp import HOST, RawClient

run = run_within(20)


def _port_taken(port: int) -> bool:
    """Whether a socket of this host still holds UDP ``port`` (binding it fails)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind((HOST, port))
    except OSError:
        return True
    finally:
        probe.close()
    return False


Get = Callable[..., Awaitable[bytes]]  # TftpClientPool.get, or tftp_get: (host, port, name, **options)


def _with_server(body: Callable[[RawClient], Awaitable[None]]) -> None:
    """Run ``body(server)`` with a hand-driven socket as the TFTP server, closed afterwards."""
    async def main() -> None:
        server = RawClient()
        try:
            await body(server)
        finally:
            server.close()

    run(main())


async def _failed_get(get: Get, server: RawClient, name: str) -> int:
    """One request the server never answers (its DATA lost on the way): the client port it used."""
    port = server.sock.getsockname()[1]
    task = asyncio.create_task(get(HOST, port, name, timeout=0.1, retries=0))
    _rrq, client = await server.recv()
    with pytest.raises(TransportError) as err:
        await task
    assert err.value.kind == "timeout"
    return client[1]


async def _late_data_1_to_the_freed_port(get: Get, server: RawClient, monkeypatch: pytest.MonkeyPatch
                                         ) -> tuple[int, int]:
    """A failed get, then a second one whose socket takes the freed port when it can (what the kernel
    may do), while the server's first transfer sends DATA 1 there again: the second must get its own
    file. The freed port, and the port the second request came from."""
    port = server.sock.getsockname()[1]
    late_tid = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the server's transfer of request 1
    late_tid.bind((HOST, 0))
    late_tid.settimeout(0.5)
    tid2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # its transfer of request 2
    tid2.bind((HOST, 0))
    tid2.settimeout(2.0)
    try:
        freed = await _failed_get(get, server, "CTLSEPA.tlv")

        real = tftp_client.client_udp_socket

        def on_the_freed_port(family: int) -> socket.socket:
            sock = real(family)
            with contextlib.suppress(OSError):  # still held: the kernel would pick another
                sock.bind((HOST, freed))  # the kernel handing out the freed port again
            return sock

        monkeypatch.setattr(tftp_client, "client_udp_socket", on_the_freed_port)
        second = asyncio.create_task(get(HOST, port, "SEPB.cnf.xml", timeout=2.0, retries=0))
        _rrq2, client2 = await server.recv()
        # the server's first transfer, not yet out of retries, sends DATA 1 again to the old port
        late_tid.sendto(encode(Data(block=1, data=b"the CTL of request 1")), (HOST, freed))
        with contextlib.suppress(TimeoutError):  # (old code: the new socket there ACKed it)
            await asyncio.to_thread(late_tid.recvfrom, 100)
        # only then the real answer: whatever the first datagram did has been done
        tid2.sendto(encode(Data(block=1, data=b"the config")), client2)
        assert await second == b"the config"
        assert decode(await asyncio.to_thread(tid2.recv, 100)) == Ack(block=1)
        return freed, client2[1]
    finally:
        late_tid.close()
        tid2.close()


def test_a_freed_port_never_passes_a_late_data_1_as_the_next_files_answer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Old code: the failed transfer's socket was closed at once; the next socket given the same port
    took the server's late DATA 1 of the first file as the answer to its own request (a wrong file)."""

    async def body(server: RawClient) -> None:
        async with TftpClientPool(max_sockets=1) as pool:
            freed, client2 = await _late_data_1_to_the_freed_port(pool.get, server, monkeypatch)
            assert client2 != freed
            assert pool.held == 1 and _port_taken(freed)  # quarantined: the port is still ours

    _with_server(body)


def test_quarantine_is_bounded_in_count_the_longest_held_closed_first() -> None:
    """At most ``max_quarantine`` sockets held: past it the one held longest closes (counted); the pool's
    close frees them all."""
    async def body(server: RawClient) -> None:
        async with TftpClientPool(max_sockets=1, quarantine_s=60.0, max_quarantine=2) as pool:
            ports = [await _failed_get(pool.get, server, f"F{i}") for i in range(3)]
            assert pool.held == 2 and pool.quarantined == 3 and pool.quarantine_evicted == 1
            assert [_port_taken(p) for p in ports] == [False, True, True]
        assert pool.held == 0 and not any(_port_taken(p) for p in ports)  # close() frees them all

    _with_server(body)


def test_quarantine_ends_after_its_time() -> None:
    """A held socket closes once ``quarantine_s`` has passed (its port free again)."""
    async def body(server: RawClient) -> None:
        async with TftpClientPool(max_sockets=1, quarantine_s=0.2) as pool:
            freed = await _failed_get(pool.get, server, "F")
            assert pool.held == 1 and _port_taken(freed)
            for _ in range(100):  # bounded: 5 s at most
                if pool.held == 0:
                    break
                await asyncio.sleep(0.05)
            assert pool.held == 0 and not _port_taken(freed)

    _with_server(body)


def test_a_pool_without_quarantine_closes_at_once() -> None:
    """``max_quarantine=0``: a failed transfer's socket closes at once, as before the quarantine."""
    async def body(server: RawClient) -> None:
        async with TftpClientPool(max_sockets=1, max_quarantine=0) as pool:
            freed = await _failed_get(pool.get, server, "F")
            assert pool.held == 0 and not _port_taken(freed)

    _with_server(body)


# -- tftp_get: its one-off sockets in one quarantine per event loop ---------------------------------------

def test_a_one_off_download_never_passes_a_late_data_1_from_a_freed_port(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Old code: tftp_get closed a failed transfer's socket at once; the next download's socket given that
    port took the server's late DATA 1 of the first file as its answer (a wrong file). Now the loop's
    quarantine holds it — and the second socket too: its file was one block, whose late copy could fool
    the download after it."""

    async def body(server: RawClient) -> None:
        freed, client2 = await _late_data_1_to_the_freed_port(tftp_client.tftp_get, server, monkeypatch)
        assert client2 != freed
        assert tftp_client.held_one_off() == 2 and _port_taken(freed) and _port_taken(client2)

    _with_server(body)


@pytest.mark.parametrize(("size", "held"), [(600, 0), (100, 1)], ids=["final-data-2", "final-data-1"])
def test_a_one_off_socket_is_held_after_a_success_only_when_its_final_data_was_block_1(size: int,
                                                                                        held: int) -> None:
    """A late final DATA 2+ is never taken as a first answer: that socket closes at once, as it did; after a
    one-block file a late copy of its DATA 1 could be, so that socket is held (old code closed it)."""
    content = (bytes(range(256)) * 3)[:size]

    async def body(server: RawClient) -> None:
        tid = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the server's transfer
        tid.bind((HOST, 0))
        tid.settimeout(2.0)
        try:
            task = asyncio.create_task(
                tftp_client.tftp_get(HOST, server.sock.getsockname()[1], "f", timeout=2.0, retries=0))
            _rrq, client = await server.recv()
            blocks = [content[i:i + 512] for i in range(0, size + 1, 512)]  # the last one short
            for number, block in enumerate(blocks, 1):
                tid.sendto(encode(Data(block=number, data=block)), client)
                assert decode(await asyncio.to_thread(tid.recv, 100)) == Ack(block=number)
            assert await task == content
            assert tftp_client.held_one_off() == held and _port_taken(client[1]) == bool(held)
        finally:
            tid.close()

    _with_server(body)


def test_one_off_quarantine_is_bounded_and_ends_with_its_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most MAX_ONE_OFF_QUARANTINE sockets held per loop, the one held longest closed first; those
    still held when the loop ends (asyncio.run) are closed then: none outlives its loop."""
    monkeypatch.setattr(tftp_client, "MAX_ONE_OFF_QUARANTINE", 2)
    ports: list[int] = []

    async def body(server: RawClient) -> None:
        ports.extend([await _failed_get(tftp_client.tftp_get, server, f"F{i}") for i in range(3)])
        assert tftp_client.held_one_off() == 2
        assert [_port_taken(p) for p in ports] == [False, True, True]

    _with_server(body)
    assert len(ports) == 3 and not any(_port_taken(p) for p in ports)


def test_one_off_quarantine_ends_after_its_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A held one-off socket closes once QUARANTINE_S has passed (its port free again)."""
    monkeypatch.setattr(tftp_client, "QUARANTINE_S", 0.2)

    async def body(server: RawClient) -> None:
        freed = await _failed_get(tftp_client.tftp_get, server, "F")
        assert tftp_client.held_one_off() == 1 and _port_taken(freed)
        for _ in range(100):  # bounded: 5 s at most
            if tftp_client.held_one_off() == 0:
                break
            await asyncio.sleep(0.05)
        assert tftp_client.held_one_off() == 0 and not _port_taken(freed)

    _with_server(body)
