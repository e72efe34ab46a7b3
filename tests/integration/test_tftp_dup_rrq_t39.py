"""A client's RRQ that reaches the lab TFTP server late, after the ACKs that followed it (tftp_server's module
docstring, displaced transfers): the transfer the client chose must still be served to its end.

The storm through the lossy proxy (``test_tftp_loss.py``) lost 1-3 of 150 files under load with "stalled at
block 5 after 40 retries (1 datagram(s) ignored, ... another port than the transfer's (ERROR 5 sent))". The
sequence scripted here, datagram by datagram, gives that very message on the old server: the client resent
its RRQ (its first answer late), the copy reached the server after the ACKs that followed it (in the storm
the proxy's request port, read one datagram a loop turn by asyncio, can hold it while the transfer runs
over its per-transfer ports), just after the last DATA was lost. The server took the copy for a new
request and ended the first transfer; the client rightly refused the second (ERROR 5) and waited for a
last block that never came again. Loopback only; every wait bounded.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from phoneemu.net.tftp import TftpClientPool, TftpServer
from phoneemu.net.tftp_server import TftpRequestEvent
from tests.helpers import run_within
from tests.integration.test_tftp_loss_proxy import HOST, LossyProxy

run = run_within(20)

NAME = "CTLFile.tlv"
CONTENT = bytes(range(256)) * 8  # 2048 bytes: DATA 1..4 full, DATA 5 empty (the storm's CTLFile.tlv)
RRQ = b"\x00\x01" + NAME.encode() + b"\x00octet\x00"
ERROR_5 = b"\x00\x05\x00\x05"


def _data(block: int) -> bytes:
    return b"\x00\x03" + block.to_bytes(2, "big") + CONTENT[(block - 1) * 512: block * 512]


def _ack(block: int) -> bytes:
    return b"\x00\x04" + block.to_bytes(2, "big")


class _Client:
    """A raw client socket: what it receives, with the port it came from."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.setblocking(False)

    async def recv(self, wait: float = 2.0) -> tuple[bytes, Any] | None:
        try:
            return await asyncio.wait_for(asyncio.get_running_loop().sock_recvfrom(self.sock, 65536), wait)
        except TimeoutError:
            return None

    def send(self, data: bytes, addr: Any) -> None:
        self.sock.sendto(data, addr)

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    async def first_four_blocks(self, port: int) -> Any:
        """RRQ, DATA 1..4 each ACKed, DATA 5 received and not ACKed (lost, as far as the server knows); the
        transfer's port."""
        self.send(RRQ, (HOST, port))
        got = await self.recv()
        assert got is not None and got[0] == _data(1), got
        tid = got[1]
        for block in (1, 2, 3, 4):
            self.send(_ack(block), tid)
            got = await self.recv()
            assert got is not None and got == (_data(block + 1), tid), got
        return tid


async def _drained(srv: TftpServer) -> None:
    """Wait (at most 1 s) until ``srv`` has no transfer left: the final ACK read, the refused one ended."""
    for _ in range(50):
        if srv.active_transfers == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{srv.active_transfers} transfer(s) still running: {srv.stats}")


def _server(events: list[TftpRequestEvent]) -> TftpServer:
    """The lab TFTP server of these tests (ephemeral TIDs): short timeout, its requests into ``events``."""
    return TftpServer({NAME: CONTENT}, port=0, timeout=0.3, retries=3, on_request=events.append)


def test_a_late_copy_of_the_rrq_does_not_end_the_transfer_at_its_last_block() -> None:
    """The client waits for DATA 5 from the first transfer's port when its RRQ's late copy arrives: the
    second transfer's DATA 1 (another port) gets ERROR 5, and DATA 5 comes again from the first port
    (was: the first transfer was ended "ok" at the copy, its port closed; DATA 5 never came again)."""
    events: list[TftpRequestEvent] = []

    async def go() -> None:
        async with _server(events) as srv:
            with _Client() as c:
                tid = await c.first_four_blocks(srv.port)
                c.send(RRQ, (HOST, srv.port))  # the late copy
                resent: tuple[bytes, Any] | None = None
                for _ in range(4):  # the second transfer's DATA 1 (and resends), then DATA 5 again
                    got = await c.recv()
                    assert got is not None, "nothing more came: the transfer the client chose was dropped"
                    if got[1] != tid:
                        assert got[0] == _data(1), got
                        c.send(ERROR_5 + b"unknown transfer ID\x00", got[1])  # RFC 1350: not ours
                        continue
                    resent = got
                    break
                assert resent == (_data(5), tid), resent
                c.send(_ack(5), tid)
                await _drained(srv)

    run(go())
    assert sorted((e.outcome, e.detail) for e in events) == [
        ("aborted", "client sent error: Error(code=5, message='unknown transfer ID')"), ("ok", "")], events


def test_a_new_request_taken_by_the_client_ends_the_displaced_transfer() -> None:
    """The converse (the client had DATA 5; its final ACK was lost) and it takes the new transfer: its ACK
    of that transfer's DATA 1 ends the first one ``ok`` at once (final ACK implied), which sends nothing
    more."""
    events: list[TftpRequestEvent] = []

    async def go() -> None:
        async with _server(events) as srv:
            with _Client() as c:
                tid = await c.first_four_blocks(srv.port)
                c.send(RRQ, (HOST, srv.port))  # the same file again
                got = await c.recv()
                assert got is not None and got[0] == _data(1) and got[1] != tid, got
                assert srv.active_transfers == 2
                c.send(_ack(1), got[1])
                got2 = await c.recv()
                assert got2 == (_data(2), got[1]), got2
                implied = ("ok", "final ACK implied by a new request")
                assert [(e.outcome, e.detail) for e in events] == [implied], events
                assert srv.active_transfers == 1
                # the next datagram: the second transfer's DATA 2 again (its timer), not the first's DATA 5
                # (its timer, earlier still, would have fired first): the first transfer is gone
                late = await c.recv()
                assert late == (_data(2), got[1]), late

    run(go())


def test_a_displaced_transfer_is_ended_by_a_third_request() -> None:
    """At most one displaced transfer per peer: a third request ends the first (``aborted``; its blksize
    512 tells it from the second's 1024), the second runs on until the client chooses."""
    events: list[TftpRequestEvent] = []

    async def go() -> None:
        async with TftpServer({NAME: CONTENT}, port=0, timeout=5.0, on_request=events.append) as srv:
            with _Client() as c:
                c.send(RRQ, (HOST, srv.port))
                first = await c.recv()
                assert first is not None
                c.send(_ack(1), first[1])  # the transfer moves on: the same RRQ is no longer its resend
                assert await c.recv() == (_data(2), first[1])
                c.send(RRQ + b"blksize\x001024\x00", (HOST, srv.port))  # another request
                second = await c.recv()
                assert second is not None and second[0][:2] == b"\x00\x06", second  # its OACK
                assert srv.active_transfers == 2 and events == []
                c.send(RRQ, (HOST, srv.port))  # and a third
                third = await c.recv()
                assert third is not None and third[0] == _data(1), third
                assert srv.active_transfers == 2
                assert [(e.outcome, e.blksize, e.detail) for e in events] == [
                    ("aborted", 512, "superseded by a new request from the same peer")], events

    run(go())


class _LateRrqCopy:
    """The storm's failing sequence as a script of :attr:`LossyProxy.intercept`: the first DATA 1 is held
    until the client has resent its RRQ; that copy is held in turn until the server sends the last DATA,
    which is lost; then the copy goes on. Everything else passes at once."""

    def __init__(self) -> None:
        self.rrqs = 0
        self.data_1: Callable[[], None] | None = None  # the held first answer
        self.rrq_copy: Callable[[], None] | None = None  # the held second RRQ
        self.final_lost = False

    def __call__(self, direction: str, data: bytes, send: Callable[[], None]) -> bool:
        if direction == "up" and data[:2] == b"\x00\x01":
            self.rrqs += 1
            if self.rrqs == 2:
                self.rrq_copy = send
                if self.data_1 is not None:
                    self.data_1()
                return True
            return False
        if direction == "down" and data[:4] == b"\x00\x03\x00\x01" and self.rrqs < 2:
            if self.data_1 is None:
                self.data_1 = send
            return True  # a resend of DATA 1 before the client's RRQ copy: lost
        if direction == "down" and data[:2] == b"\x00\x03" and len(data) < 516 and not self.final_lost:
            self.final_lost = True
            if self.rrq_copy is not None:
                self.rrq_copy()
            return True
        return False


def test_pool_gets_the_file_when_its_resent_rrq_arrives_after_the_last_data() -> None:
    """End to end, the pool and the lab server through the proxy playing the storm's failing sequence:
    the file arrives (was: ``stalled at block 5 after 20 retries (1 datagram(s) ignored, ... another port
    than the transfer's (ERROR 5 sent))``)."""
    script = _LateRrqCopy()

    async def go() -> None:
        async with TftpServer({NAME: CONTENT}, port=0, timeout=0.3, retries=3) as srv, \
                LossyProxy(srv.port, lifetime=15.0) as proxy:
            proxy.intercept = script
            async with TftpClientPool(max_sockets=1, timeout=0.1, retries=20) as pool:
                got = await pool.get(HOST, proxy.port, NAME, max_time=10.0)
            assert got == CONTENT
            assert script.rrqs == 2 and script.final_lost and script.rrq_copy is not None
            assert proxy.count("up", "ERROR") >= 1  # the second transfer was started, and refused
            await _drained(srv)
            assert srv.stats == {"ok": 1, "aborted": 1}, srv.stats

    run(go())
