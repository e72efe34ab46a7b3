"""TftpClientPool against a single-socket server (answers from its listening address): reuse rules."""

from __future__ import annotations

import asyncio

from phoneemu.net.tftp import TftpClientPool
from phoneemu.net.tftp_codec import Ack, Data, OptionAck, ReadRequest, decode, encode
from tests.helpers import run_within
from tests.integration.test_tftp import HOST, RawClient

run = run_within(10)


def test_single_socket_server_sockets_are_not_reused_and_stale_data_cannot_leak() -> None:
    """A late DATA 1 of the previous (one-block) file must never become the next file (issue #6)."""

    async def main() -> None:
        server = RawClient()  # plays a single-socket server: every answer from its listening port
        port = server.sock.getsockname()[1]
        try:
            async with TftpClientPool(max_sockets=1, blksize=1428) as pool:
                first = asyncio.create_task(pool.get(HOST, port, "SEPA.cnf.xml.sgn", timeout=0.5))
                rrq, client = await server.recv()
                assert decode(rrq) == ReadRequest(filename="SEPA.cnf.xml.sgn", options={"blksize": "1428"})
                await server.send(encode(OptionAck(options={"blksize": "1428"})), client)
                assert decode((await server.recv())[0]) == Ack(block=0)
                stale = encode(Data(block=1, data=b"previous config"))
                await server.send(stale, client)
                assert decode((await server.recv())[0]) == Ack(block=1)
                assert await first == b"previous config"

                second = asyncio.create_task(pool.get(HOST, port, "SEPB.cnf.xml.sgn", timeout=0.5))
                rrq2, client2 = await server.recv()
                assert decode(rrq2).filename == "SEPB.cnf.xml.sgn"  # type: ignore[union-attr]
                assert client2 != client  # a fresh socket, not the one the stale packet goes to
                await server.send(stale, client)  # the late duplicate reaches a closed port
                await server.send(encode(OptionAck(options={"blksize": "1428"})), client2)
                assert decode((await server.recv())[0]) == Ack(block=0)
                await server.send(encode(Data(block=1, data=b"the right config")), client2)
                assert decode((await server.recv())[0]) == Ack(block=1)
                assert await second == b"the right config"
        finally:
            server.close()

    run(main())


def test_single_socket_server_socket_is_reused_after_a_multi_block_file_and_a_stale_final_refused() -> None:
    """After a final DATA 2+ the socket is reused (issue #6: ~65 syscalls a boot); a late copy of that
    final block, before or during the next transfer, is re-ACKed or ignored, never taken as data."""

    async def main() -> None:
        server = RawClient()
        port = server.sock.getsockname()[1]
        try:
            async with TftpClientPool(max_sockets=1) as pool:
                first = asyncio.create_task(pool.get(HOST, port, "ITLSEPA.tlv", timeout=0.5))
                rrq, client = await server.recv()
                assert decode(rrq) == ReadRequest(filename="ITLSEPA.tlv", options={})
                await server.send(encode(Data(block=1, data=b"x" * 512)), client)
                assert decode((await server.recv())[0]) == Ack(block=1)
                stale = encode(Data(block=2, data=b"end of the ITL"))
                await server.send(stale, client)
                assert decode((await server.recv())[0]) == Ack(block=2)
                assert await first == b"x" * 512 + b"end of the ITL"

                await server.send(stale, client)  # our final ACK was lost: the idle socket re-ACKs it
                assert decode((await server.recv())[0]) == Ack(block=2)
                await asyncio.sleep(0.55)  # idle one timeout: the pool reuses it (tftp_client docstring)

                second = asyncio.create_task(pool.get(HOST, port, "SEPB.cnf.xml.sgn", timeout=0.5))
                rrq2, client2 = await server.recv()
                assert decode(rrq2).filename == "SEPB.cnf.xml.sgn"  # type: ignore[union-attr]
                assert client2 == client  # the same socket, reused
                await server.send(stale, client)  # late, before the first answer: not an answer
                assert decode((await server.recv())[0]) == Ack(block=2)  # re-ACKed (the dally), not taken
                await server.send(encode(Data(block=1, data=b"y" * 512)), client)
                assert decode((await server.recv())[0]) == Ack(block=1)
                await server.send(encode(Data(block=2, data=b"the right config")), client)
                assert decode((await server.recv())[0]) == Ack(block=2)
                assert await second == b"y" * 512 + b"the right config"
        finally:
            server.close()

    run(main())


def test_a_lossy_slow_single_socket_server_never_gives_a_reused_socket_the_wrong_file() -> None:
    """Issue #6's reuse rule where it matters: the lab server in ``tid_mode="shared"`` drops 15 % of
    the datagrams and delivers each of its own 20 ms late, so the retransmission of a final DATA whose
    ACK was lost can still be on its way when the client's next request leaves the same socket. Four
    pooled sockets fetch files of 1, 2 and 3 blocks (and a whole number of blocks) 60 times, idle in
    between for times around the server's retransmission timeout. Every download is exactly its
    file's bytes; a socket reused after a one-block file took such a late DATA 1 for the next file."""
    from phoneemu.net.tftp_server import TftpServer

    files = {f"f{n}.bin": bytes([n]) * size for n, size in enumerate((100, 600, 1200, 1024, 513, 40))}
    names = sorted(files)
    order = [names[(i * 7 + i // 3) % len(names)] for i in range(60)]

    async def main() -> None:
        server = TftpServer(files, HOST, 0, tid_mode="shared", loss=0.15, delay=0.02, seed=6, timeout=0.03,
                            retries=20)
        async with server as srv, TftpClientPool(max_sockets=4, timeout=0.2, retries=12) as pool:

            async def fetch(i: int, name: str) -> bytes:
                await asyncio.sleep(i * 0.015 + (i * 37 % 11) * 0.001)  # sockets idle now and then
                return await pool.get(HOST, srv.port, name)

            got = await asyncio.gather(*(fetch(i, name) for i, name in enumerate(order)))
        wrong = [(i, n, len(g)) for i, (g, n) in enumerate(zip(got, order, strict=True)) if g != files[n]]
        assert not wrong, wrong

    run(main())
