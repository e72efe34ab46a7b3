"""The lab TFTP server in ``tid_mode="shared"`` and a second late copy of one RRQ at the same block
(tftp_server's module docstring, ``shared`` mode): an RFC 1350 client resends its RRQ at each timeout, so a
slow first answer leaves two copies or more that the network may delay past the ACKs that followed them.
Each is answered with the transfer's current packet while its retries last (was: once a block; the second
copy ended the transfer and sent DATA 1 of a new one from the same port, which the client, still waiting for
DATA 5 there when the first answer was lost too, took for a stale block and stalled). Loopback only; every
wait bounded.
"""

from __future__ import annotations

from phoneemu.net.tftp_server import TftpRequestEvent
from tests.helpers import run_within
from tests.integration.test_tftp_dup_rrq_t39 import RRQ, _ack, _Client, _data, _drained
from tests.integration.test_tftp_loss_proxy import HOST
from tests.integration.test_tftp_shared_dup_t39b import _shared

run = run_within(20)


def test_a_second_late_copy_at_the_last_block_is_answered_with_the_last_block_too() -> None:
    """DATA 5 lost, the late copy answered with DATA 5 (lost too), then the second late copy: DATA 5 again,
    its ACK ends the transfer ``ok``, no second transfer."""
    events: list[TftpRequestEvent] = []

    async def go() -> None:
        async with _shared(events, timeout=5.0) as srv:  # no timer resend within the test
            with _Client() as c:
                tid = await c.first_four_blocks(srv.port)
                c.send(RRQ, (HOST, srv.port))  # the first late copy
                assert await c.recv() == (_data(5), tid)  # "lost"
                c.send(RRQ, (HOST, srv.port))  # the second late copy
                assert await c.recv() == (_data(5), tid)
                c.send(_ack(5), tid)
                await _drained(srv)
                assert await c.recv(0.2) is None  # no second transfer

    run(go())
    assert [(e.outcome, e.detail) for e in events] == [("ok", "")], events
