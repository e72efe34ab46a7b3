"""TftpClientPool's own counters (the fleet summary's ``tftp`` figures): requests, retransmitted, retransmits.

Driven by a hand-played server on loopback: each packet it answers or leaves unanswered is chosen here.
"""

from __future__ import annotations

import asyncio

import pytest

from phoneemu.errors import TransportError
from phoneemu.net.tftp import TftpClientPool
from phoneemu.net.tftp_codec import Ack, Data, ReadRequest, decode, encode
from tests.helpers import run_within
from tests.integration.test_tftp import HOST, RawClient

run = run_within(20)


def test_the_pool_counts_requests_retransmitted_transfers_and_retransmissions() -> None:
    async def main() -> None:
        server = RawClient()
        port = server.sock.getsockname()[1]
        phone_count: list[int] = []
        try:
            async with TftpClientPool(max_sockets=1, timeout=0.1) as pool:
                # 1: the first RRQ is lost (not answered), its resend is: one transfer, one retransmission
                first = asyncio.create_task(pool.get(HOST, port, "A", timeout=0.5,
                                                     on_retransmit=lambda: phone_count.append(1)))
                rrq, client = await server.recv()
                again, client_again = await server.recv()
                assert decode(rrq) == decode(again) == ReadRequest(filename="A") and client_again == client
                await server.send(encode(Data(block=1, data=b"a")), client)
                assert decode((await server.recv())[0]) == Ack(block=1)
                assert await first == b"a"
                assert (pool.requests, pool.retransmitted, pool.retransmits) == (1, 1, 1)
                assert phone_count == [1]  # the caller's own hook is still called

                # 2: never answered, two resends allowed: the same transfer counted once, its packets twice
                second = asyncio.create_task(pool.get(HOST, port, "B", retries=2))
                for _ in range(3):
                    assert decode((await server.recv())[0]) == ReadRequest(filename="B")
                with pytest.raises(TransportError):
                    await second
                assert (pool.requests, pool.retransmitted, pool.retransmits) == (2, 2, 3)

                # 3: answered at once: a request, nothing resent
                third = asyncio.create_task(pool.get(HOST, port, "C", timeout=2.0))
                _rrq, client3 = await server.recv()
                await server.send(encode(Data(block=1, data=b"c")), client3)
                assert await third == b"c"
                assert (pool.requests, pool.retransmitted, pool.retransmits) == (3, 2, 3)
            with pytest.raises(TransportError):  # a closed pool still counts the request (as the fleet did)
                await pool.get(HOST, port, "D")
            assert pool.requests == 4
        finally:
            server.close()

    run(main())
