"""TftpClientPool: a socket not reused keeps its port for the server's retry budget (quarantine).

The kernel may give a freed UDP port to the next socket of the same host; a server still sending the
abandoned transfer's DATA 1 to that port would then answer the new request with the wrong file. The
tests force that reuse by binding the pool's next socket to the freed port (what the kernel may do).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

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


async def _failed_get(pool: TftpClientPool, server: RawClient, name: str) -> int:
    """One request the server never answers (its DATA lost on the way): the client port it used."""
    port = server.sock.getsockname()[1]
    task = asyncio.create_task(pool.get(HOST, port, name, timeout=0.1, retries=0))
    _rrq, client = await server.recv()
    with pytest.raises(TransportError) as err:
        await task
    assert err.value.kind == "timeout"
    return client[1]


def test_a_freed_port_never_passes_a_late_data_1_as_the_next_files_answer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Old code: the failed transfer's socket was closed at once; the next socket given the same port
    took the server's late DATA 1 of the first file as the answer to its own request (a wrong file)."""

    async def main() -> None:
        server = RawClient()
        port = server.sock.getsockname()[1]
        late_tid = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the server's transfer of request 1
        late_tid.bind((HOST, 0))
        late_tid.settimeout(0.5)
        tid2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # its transfer of request 2
        tid2.bind((HOST, 0))
        tid2.settimeout(2.0)
        try:
            async with TftpClientPool(max_sockets=1) as pool:
                freed = await _failed_get(pool, server, "CTLSEPA.tlv")

                real = tftp_client.client_udp_socket

                def on_the_freed_port(family: int) -> socket.socket:
                    sock = real(family)
                    with contextlib.suppress(OSError):  # still held: the kernel would pick another
                        sock.bind((HOST, freed))  # the kernel handing out the freed port again
                    return sock

                monkeypatch.setattr(tftp_client, "client_udp_socket", on_the_freed_port)
                second = asyncio.create_task(pool.get(HOST, port, "SEPB.cnf.xml", timeout=2.0, retries=0))
                _rrq2, client2 = await server.recv()
                # the server's first transfer, not yet out of retries, sends DATA 1 again to the old port
                late_tid.sendto(encode(Data(block=1, data=b"the CTL of request 1")), (HOST, freed))
                with contextlib.suppress(TimeoutError):  # (old code: the new socket there ACKed it)
                    await asyncio.to_thread(late_tid.recvfrom, 100)
                # only then the real answer: whatever the first datagram did has been done
                tid2.sendto(encode(Data(block=1, data=b"the config")), client2)
                assert await second == b"the config"
                assert decode(await asyncio.to_thread(tid2.recv, 100)) == Ack(block=1)
                assert client2[1] != freed
                assert pool.held == 1 and _port_taken(freed)  # quarantined: the port is still ours
        finally:
            server.close()
            late_tid.close()
            tid2.close()

    run(main())


def test_quarantine_is_bounded_in_count_the_longest_held_closed_first() -> None:
    """At most ``max_quarantine`` sockets held: past it the one held longest closes (counted); the pool's
    close frees them all."""
    async def main() -> None:
        server = RawClient()
        try:
            async with TftpClientPool(max_sockets=1, quarantine_s=60.0, max_quarantine=2) as pool:
                ports = [await _failed_get(pool, server, f"F{i}") for i in range(3)]
                assert pool.held == 2 and pool.quarantined == 3 and pool.quarantine_evicted == 1
                assert [_port_taken(p) for p in ports] == [False, True, True]
            assert pool.held == 0 and not any(_port_taken(p) for p in ports)  # close() frees them all
        finally:
            server.close()

    run(main())


def test_quarantine_ends_after_its_time() -> None:
    """A held socket closes once ``quarantine_s`` has passed (its port free again)."""
    async def main() -> None:
        server = RawClient()
        try:
            async with TftpClientPool(max_sockets=1, quarantine_s=0.2) as pool:
                freed = await _failed_get(pool, server, "F")
                assert pool.held == 1 and _port_taken(freed)
                for _ in range(100):  # bounded: 5 s at most
                    if pool.held == 0:
                        break
                    await asyncio.sleep(0.05)
                assert pool.held == 0 and not _port_taken(freed)
        finally:
            server.close()

    run(main())


def test_a_pool_without_quarantine_closes_at_once() -> None:
    """``max_quarantine=0``: a failed transfer's socket closes at once, as before the quarantine."""
    async def main() -> None:
        server = RawClient()
        try:
            async with TftpClientPool(max_sockets=1, max_quarantine=0) as pool:
                freed = await _failed_get(pool, server, "F")
                assert pool.held == 0 and not _port_taken(freed)
        finally:
            server.close()

    run(main())
