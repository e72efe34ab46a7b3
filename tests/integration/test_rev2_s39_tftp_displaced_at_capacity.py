"""A client's new request at ``max_transfers`` (tftp_server's module docstring, displaced transfers): the
transfer it displaces is its own, so it makes room for the new one — ended at once, as before transfers were
displaced — rather than the new request being refused "server busy" by the very transfer it replaces (was,
since 3e874cb: ERROR 0 "server busy" to a client that asked its file again from the same port, and the bound
then counted a transfer the client had left). Loopback only; every wait bounded.
"""

from __future__ import annotations

import pytest

from phoneemu.net.tftp import TftpServer
from phoneemu.net.tftp_server import TftpRequestEvent
from tests.helpers import run_within
from tests.integration.test_tftp_dup_rrq_t39 import CONTENT, NAME, RRQ, _ack, _Client, _data
from tests.integration.test_tftp_loss_proxy import HOST

run = run_within(20)

OACK_1024 = b"\x00\x06blksize\x001024\x00"


@pytest.mark.parametrize(("again", "first_ends", "answer"), [
    # the same RRQ at the last block: the client has the file (its final ACK lost), the old one is complete
    (RRQ, ("ok", "final ACK implied by a new request"), "data-1"),
    # another request while the old transfer is under way: the old one is superseded
    (RRQ + b"blksize\x001024\x00", ("aborted", "superseded by a new request from the same peer"), "oack"),
], ids=["same-rrq-at-last-block", "other-rrq-under-way"])
def test_a_request_at_max_transfers_ends_its_own_displaced_transfer(again: bytes, first_ends: tuple[str, str],
                                                                     answer: str) -> None:
    events: list[TftpRequestEvent] = []

    async def go() -> None:
        async with TftpServer({NAME: CONTENT}, port=0, timeout=5.0, max_transfers=1,
                              on_request=events.append) as srv:
            with _Client() as c:
                if answer == "data-1":
                    tid = await c.first_four_blocks(srv.port)  # DATA 5 sent, not ACKed: the last block
                else:
                    c.send(RRQ, (HOST, srv.port))
                    got = await c.recv()
                    assert got is not None and got[0] == _data(1), got
                    tid = got[1]
                    c.send(_ack(1), tid)
                    assert await c.recv() == (_data(2), tid)
                c.send(again, (HOST, srv.port))
                got = await c.recv()
                assert got is not None, "no answer to the new request"
                want = _data(1) if answer == "data-1" else OACK_1024
                assert got[0] == want and got[1] not in (tid, (HOST, srv.port)), got  # not "server busy"
                assert srv.active_transfers == 1  # the bound holds: the old transfer made room
                assert [(e.outcome, e.detail) for e in events] == [first_ends], events

    run(go())


def test_another_peer_at_max_transfers_is_still_refused_busy() -> None:
    """The room is made only by a peer's own displaced transfer: another client (another port) at the bound
    gets "server busy" while a transfer and a displaced one run."""
    events: list[TftpRequestEvent] = []

    async def go() -> None:
        async with TftpServer({NAME: CONTENT}, port=0, timeout=5.0, max_transfers=2,
                              on_request=events.append) as srv:
            a, b = _Client(), _Client()
            try:
                tid = await a.first_four_blocks(srv.port)
                a.send(RRQ, (HOST, srv.port))  # displaces the first: two transfers, the bound
                got = await a.recv()
                assert got is not None and got[0] == _data(1) and got[1] != tid, got
                assert srv.active_transfers == 2 and events == []
                b.send(RRQ, (HOST, srv.port))
                refused = await b.recv()
                assert refused is not None and refused[0].startswith(b"\x00\x05\x00\x00server busy"), refused
                assert srv.active_transfers == 2
                assert [e.outcome for e in events] == ["busy"], events
            finally:
                a.sock.close()
                b.sock.close()

    run(go())
