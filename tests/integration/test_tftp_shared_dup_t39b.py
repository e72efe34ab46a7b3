"""The lab TFTP server in ``tid_mode="shared"`` (one socket, one transfer per client; the fleet's and the
benchmarks' lab) and the same RRQ again while a transfer is under way past its first ACK (tftp_server's module
docstring, ``shared`` mode): answered with the transfer's current packet while its retries last, the client's
next packet telling which transfer it wants.

The sequence of ``test_tftp_dup_rrq_t39.py`` (a resent RRQ whose copy the network delays past the ACKs that
followed it, just after the last DATA was lost) on the shared server: the server ended the transfer and sent
the new one's DATA 1 from the same port; the client, waiting for DATA 5 there, took it for a stale block and
stalled ("stalled at block 5 after 20 retries (... DATA 1 out of order (block 5 awaited))"). Loopback only;
every wait bounded.
"""

from __future__ import annotations

import asyncio

import pytest

from phoneemu.net.tftp import TftpClientPool, TftpServer
from phoneemu.net.tftp_server import TftpRequestEvent
from tests.helpers import run_within
from tests.integration.test_tftp_dup_rrq_t39 import (
    CONTENT,
    NAME,
    RRQ,
    _ack,
    _Client,
    _data,
    _drained,
    _LateRrqCopy,
)
from tests.integration.test_tftp_loss_proxy import HOST, LossyProxy

run = run_within(20)
IMPLIED = ("ok", "final ACK implied by a new request")


def _shared(events: list[TftpRequestEvent], **kw: float) -> TftpServer:
    return TftpServer({NAME: CONTENT}, port=0, tid_mode="shared", on_request=events.append,
                      **{"timeout": 0.3, "retries": 3, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize("copies", [1, 2])
def test_late_copies_of_the_rrq_at_the_last_block_are_answered_with_the_last_block(copies: int) -> None:
    """DATA 5 lost, then the late copy: DATA 5 comes again, its ACK ends the transfer ``ok`` (was: DATA 1 of
    a new transfer from the same port, the first ended "final ACK implied"). Two late copies (an RFC 1350
    client resends its RRQ at each timeout; the first answer lost too): each answered with DATA 5 while the
    retries last (was: once a block, the second copy ended the transfer and sent DATA 1 from the same port,
    which the client, still waiting for DATA 5 there, took for a stale block and stalled)."""
    events: list[TftpRequestEvent] = []

    async def go() -> None:
        async with _shared(events, timeout=5.0) as srv:  # no timer resend within the test: the copy's answer
            with _Client() as c:
                tid = await c.first_four_blocks(srv.port)
                assert tid[1] == srv.port  # shared: the server's port is the transfer's
                for _ in range(copies):
                    c.send(RRQ, (HOST, srv.port))  # a late copy (the answer to the one before "lost")
                    assert await c.recv() == (_data(5), tid)
                c.send(_ack(5), tid)
                await _drained(srv)
                assert await c.recv(0.2) is None  # no second transfer

    run(go())
    assert [(e.outcome, e.detail) for e in events] == [("ok", "")], events


def test_the_same_request_once_more_starts_the_new_transfer() -> None:
    """The client had DATA 5 (its final ACK lost) and asks again from the same port: the answers, DATA 5
    while the retries last (3: each copy may be a late one), it ignores, and its RRQ once they are spent ends
    the old transfer ``ok`` and starts the new one."""
    events: list[TftpRequestEvent] = []

    async def go() -> None:
        async with _shared(events, timeout=5.0) as srv:
            with _Client() as c:
                tid = await c.first_four_blocks(srv.port)
                for _ in range(3):  # the server's retries
                    c.send(RRQ, (HOST, srv.port))
                    assert await c.recv() == (_data(5), tid)
                assert events == []
                c.send(RRQ, (HOST, srv.port))
                assert await c.recv() == (_data(1), tid)
                assert [(e.outcome, e.detail) for e in events] == [IMPLIED]
                c.send(_ack(1), tid)
                assert await c.recv() == (_data(2), tid)
                assert srv.active_transfers == 1

    run(go())


def test_a_late_copy_to_a_stalled_transfer_is_answered_with_its_current_block() -> None:
    """Under way, not at its last block: DATA 2 lost, resent by the timer (the transfer has stalled), then the
    late copy: DATA 2 again, and the transfer goes on to its end (was: ended ``aborted``, DATA 1 sent)."""
    events: list[TftpRequestEvent] = []

    async def go() -> None:
        async with _shared(events) as srv:
            with _Client() as c:
                c.send(RRQ, (HOST, srv.port))
                first = await c.recv()
                assert first is not None and first[0] == _data(1), first
                tid = first[1]
                c.send(_ack(1), tid)
                assert await c.recv() == (_data(2), tid)  # "lost": not ACKed
                assert await c.recv() == (_data(2), tid)  # the timer's resend (0.3 s)
                c.send(RRQ, (HOST, srv.port))  # the late copy
                assert await c.recv() == (_data(2), tid)
                for block in (2, 3, 4):
                    c.send(_ack(block), tid)
                    assert await c.recv() == (_data(block + 1), tid)
                c.send(_ack(5), tid)
                await _drained(srv)

    run(go())
    assert [(e.outcome, e.detail) for e in events] == [("ok", "")], events


def test_a_copy_is_not_answered_past_the_retries() -> None:
    """The answer is a retransmission: with none left (``retries=1``, spent by the timer) the copy starts the
    new transfer, as before; no request keeps a transfer alive past ``timeout * (retries + 1)``."""
    events: list[TftpRequestEvent] = []

    async def go() -> None:
        async with _shared(events, retries=1) as srv:
            with _Client() as c:
                tid = await c.first_four_blocks(srv.port)
                assert await c.recv() == (_data(5), tid)  # the timer's one resend
                c.send(RRQ, (HOST, srv.port))
                assert await c.recv() == (_data(1), tid)
                assert [(e.outcome, e.detail) for e in events] == [IMPLIED]

    run(go())


def test_pool_gets_the_file_when_its_resent_rrq_arrives_after_the_last_data() -> None:
    """End to end, the pool and the shared server through the proxy playing the storm's failing sequence
    (``_LateRrqCopy``): the file arrives, one transfer ``ok`` (was: ``stalled at block 5 after 20
    retries``)."""
    script = _LateRrqCopy()
    events: list[TftpRequestEvent] = []

    async def go() -> None:
        async with _shared(events) as srv, LossyProxy(srv.port, lifetime=15.0) as proxy:
            proxy.intercept = script
            async with TftpClientPool(max_sockets=1, timeout=0.1, retries=20) as pool:
                got = await pool.get(HOST, proxy.port, NAME, max_time=10.0)
            assert got == CONTENT
            assert script.rrqs == 2 and script.final_lost and script.rrq_copy is not None
            await _drained(srv)

    run(go())
    assert [(e.outcome, e.detail) for e in events] == [("ok", "")], events


class _FinalAckLost:
    """Loses the client's first final ACK (ACK 5) on its way to the server; everything else passes."""

    def __init__(self) -> None:
        self.lost = 0

    def __call__(self, direction: str, data: bytes, send: object) -> bool:
        if direction == "up" and data == _ack(5) and not self.lost:
            self.lost += 1
            return True
        return False


def test_a_reused_pool_socket_re_acks_the_previous_final_data_it_is_answered_with() -> None:
    """The pool's socket, its final ACK lost, asks the same file again before the server resends: the server
    answers with the old DATA 5 (a copy, for all it knows); the client re-ACKs it as the dally does (the old
    transfer ends ``ok`` on its own ACK; was: ignored, "DATA 5 before DATA 1", the old transfer ended by the
    RRQ resent, "final ACK implied") and gets the file by its next RRQ."""
    script = _FinalAckLost()
    events: list[TftpRequestEvent] = []

    async def go() -> None:
        async with _shared(events, timeout=5.0) as srv, LossyProxy(srv.port, lifetime=15.0) as proxy:
            proxy.intercept = script
            async with TftpClientPool(max_sockets=1, timeout=0.1, retries=20) as pool:
                assert await pool.get(HOST, proxy.port, NAME, max_time=5.0) == CONTENT
                await asyncio.sleep(0.15)  # one client timeout: the socket is reused
                assert await pool.get(HOST, proxy.port, NAME, max_time=5.0) == CONTENT
            assert script.lost == 1
            assert len(proxy.sessions) == 1  # one client socket: reused
            await _drained(srv)

    run(go())
    assert [(e.outcome, e.detail) for e in events] == [("ok", ""), ("ok", "")], events
