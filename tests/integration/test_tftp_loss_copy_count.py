"""Which copy of an RRQ the lab TFTP server's loss draw counts (tftp_server's module docstring, repeatable
loss): a client socket's identical RRQs count 1, 2, ... until that socket has acknowledged the answer to
them; from then on it can never resend that request, so its next RRQ — the same file again, e.g. from a
pooled socket (``TftpClientPool``) — is copy 1 of a new request, also while the server still re-sends the
last DATA of the previous transfer (its final ACK lost) or after that transfer timed out there.

Every draw is recorded by a stand-in for ``tftp_server.is_lost`` that drops what a test names (a lossless
network otherwise); the clients are raw UDP sockets on loopback and one ``TftpClientPool``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable

import pytest

import phoneemu.net.tftp_server as tftp_server
from phoneemu.net.tftp_client import TftpClientPool
from phoneemu.net.tftp_codec import Ack, Data, ReadRequest, decode, encode
from phoneemu.net.tftp_server import TftpRequestEvent, TftpServer
from tests.helpers import run_within

HOST = "127.0.0.1"
NAME = "SEP0A0000003301.cnf.xml"
FILES = {NAME: bytes(range(256)) * 4 + b"tail"}  # 1028 bytes: DATA 1 and 2 of 512, DATA 3 of 4
RRQ = encode(ReadRequest(filename=NAME, mode="octet", options={}))
MODES = ["ephemeral", "shared"]
WAIT = 2.0  # seconds at most for an answer that must come

run = run_within(20)

What = tuple[object, ...]
Addr = tuple[str, int]


def _rrq_copy(n: int) -> What:
    return ("tftp", NAME.encode(), "rrq", n)


def _ack(block: int) -> bytes:
    return encode(Ack(block=block))


class _Draws:
    """Stands in for ``tftp_server.is_lost``: records every draw's ``what``; drops those in ``drop``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, drop: Iterable[What] = ()) -> None:
        self.made: list[What] = []
        self.drop = set(drop)

        def drawn(_key: bytes, _loss: float, what: What) -> bool:
            self.made.append(what)
            return what in self.drop

        monkeypatch.setattr(tftp_server, "is_lost", drawn)

    def rrqs(self) -> list[What]:
        return [w for w in self.made if w[2] == "rrq"]

    async def until(self, what: What) -> None:
        """Waits (at most WAIT s) until ``what`` has been drawn."""
        for _ in range(int(WAIT / 0.01)):
            if what in self.made:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{what} never drawn: {self.made}")

    def take(self) -> list[What]:
        made, self.made = self.made, []
        return made


class _Raw:
    """A hand-driven client socket (one port for all its requests, as a pooled socket); closed at the end
    of its ``with`` block."""

    def __init__(self, server_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind((HOST, 0))
        self.main: Addr = (HOST, server_port)

    async def send(self, data: bytes, addr: Addr | None = None) -> None:
        await asyncio.get_running_loop().sock_sendto(self.sock, data, addr or self.main)

    async def data(self, block: int, wait: float = WAIT) -> Addr:
        """Waits for DATA ``block`` (at most ``wait`` s); returns where it came from (the transfer's TID)."""
        buf, addr = await asyncio.wait_for(asyncio.get_running_loop().sock_recvfrom(self.sock, 70000), wait)
        pkt = decode(buf)
        assert isinstance(pkt, Data) and pkt.block == block, pkt
        return (str(addr[0]), int(addr[1]))

    async def nothing(self, wait: float) -> None:
        """Nothing arrives within ``wait`` s."""
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.get_running_loop().sock_recvfrom(self.sock, 70000), wait)

    async def fetch_unacked_last(self) -> Addr:
        """RRQ, then DATA 1 and 2 acknowledged, DATA 3 (the last) not: the server keeps re-sending it."""
        await self.send(RRQ)
        tid = await self.data(1)
        await self.send(_ack(1), tid)
        await self.data(2)
        await self.send(_ack(2), tid)
        await self.data(3)
        return tid

    def __enter__(self) -> _Raw:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.sock.close()


class _Outcomes:
    """The server's ``on_request`` events; :meth:`wait` for the n-th."""

    def __init__(self) -> None:
        self.events: list[TftpRequestEvent] = []
        self.changed = asyncio.Event()

    def __call__(self, event: TftpRequestEvent) -> None:
        self.events.append(event)
        self.changed.set()

    async def wait(self, count: int) -> list[str]:
        async def until() -> None:
            while len(self.events) < count:
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(until(), WAIT)
        return [e.outcome for e in self.events]


def _server(mode: str, **kw: object) -> TftpServer:
    return TftpServer(FILES, HOST, 0, tid_mode=mode, loss=0.5, **kw)  # type: ignore[arg-type]


def _sendings_of(draws: list[What]) -> set[object]:
    """The RRQ copy the transfers of ``draws`` were keyed with (their DATA's "sent" draws)."""
    return {w[2] for w in draws if len(w) == 6 and w[3] == "sent"}


@pytest.mark.parametrize("mode", MODES)
def test_a_new_request_while_the_last_block_lingers_is_copy_1(mode: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The reported case: the same socket asks for the same file again while the server still waits for
    the final ACK (its timer 5 s). The client acknowledged DATA 1, so it never resends that RRQ: the new
    one is copy 1, drawn as a fresh socket's first request is (was copy 2, another fate). A real
    retransmission of the new request is then copy 2 (was 1: the old transfer's end reset the count).
    ``shared`` mode answers that request with the last block (a late copy, for all it knows: tftp_server's
    module docstring), which counts for nothing: the client's request again is copy 1 and starts the
    transfer, drawn as the first request was."""
    draws = _Draws(monkeypatch)

    async def main() -> None:
        # retries=1: shared mode answers the same RRQ while the retries last, here once (module docstring)
        async with _server(mode, timeout=5.0, retries=1) as srv:
            with _Raw(srv.port) as client:
                await client.fetch_unacked_last()
                first = draws.take()
                await client.send(RRQ)  # the pooled socket's next request
                if mode == "shared":
                    await client.data(3)  # the answer, ignored by the client: it asks again
                await client.send(RRQ)  # and its retransmission (its timer ran out before DATA 1 came)
                await client.data(1)
                again = draws.take()
        assert [w for w in first if w[2] == "rrq"] == [_rrq_copy(1)]
        if mode == "shared":
            assert [w for w in again if w[2] == "rrq"] == [_rrq_copy(1), _rrq_copy(1)]
            assert again[0] == first[0] and again[2:4] == first[:2]  # the second copy drawn as the first
        else:
            assert [w for w in again if w[2] == "rrq"] == [_rrq_copy(1), _rrq_copy(2)]
            assert again[:2] == first[:2]  # RRQ copy 1 and its transfer's DATA 1: the first request's draws
        assert _sendings_of(again) == {1}

    run(main())


@pytest.mark.parametrize("mode", MODES)
def test_a_new_request_after_a_timeout_on_the_last_block_is_copy_1(mode: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The server gave up on the final ACK (outcome timeout, the client has the file): the socket's next
    request for the same file is copy 1 (was copy 2: only an ``ok`` ended the count)."""
    draws = _Draws(monkeypatch)
    outcomes = _Outcomes()

    async def main() -> None:
        async with _server(mode, timeout=0.05, retries=1, on_request=outcomes) as srv:
            with _Raw(srv.port) as client:
                await client.fetch_unacked_last()
                assert await outcomes.wait(1) == ["timeout"]
                draws.take()
                await client.data(3)  # the one re-sending of the last block
                await client.send(RRQ)
                await client.data(1)
        assert draws.rrqs() == [_rrq_copy(1)]
        assert _sendings_of(draws.made) == {1}

    run(main())


@pytest.mark.parametrize("mode", MODES)
def test_a_new_request_after_a_served_one_is_copy_1(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The converse: the transfer ended ``ok``, the same RRQ again from the same port is copy 1."""
    draws = _Draws(monkeypatch)
    outcomes = _Outcomes()

    async def main() -> None:
        async with _server(mode, timeout=5.0, on_request=outcomes) as srv:
            with _Raw(srv.port) as client:
                tid = await client.fetch_unacked_last()
                await client.send(_ack(3), tid)
                assert await outcomes.wait(1) == ["ok"]
                await client.send(RRQ)
                await client.data(1)
        assert draws.rrqs() == [_rrq_copy(1), _rrq_copy(1)]

    run(main())


@pytest.mark.parametrize("mode", MODES)
def test_a_copy_of_the_request_during_its_transfer_leaves_the_next_request_copy_1(
        mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy of the RRQ arriving after DATA 1 was acknowledged (the network duplicated it) is ignored by
    the transfer and counts for nothing: the socket's next request is copy 1."""
    draws = _Draws(monkeypatch)
    outcomes = _Outcomes()

    async def main() -> None:
        async with _server(mode, timeout=5.0, on_request=outcomes) as srv:
            with _Raw(srv.port) as client:
                await client.send(RRQ)
                tid = await client.data(1)
                await client.send(_ack(1), tid)
                await client.data(2)
                await client.send(RRQ)  # the duplicate: ignored, the transfer goes on
                await client.send(_ack(2), tid)
                await client.data(3)
                await client.send(_ack(3), tid)
                assert await outcomes.wait(1) == ["ok"]
                draws.take()
                await client.send(RRQ)
                await client.data(1)
        assert draws.rrqs() == [_rrq_copy(1)]

    run(main())


@pytest.mark.parametrize("mode", MODES)
def test_a_retransmitted_request_is_copy_2(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real retransmission — the first copy dropped, nothing started — is copy 2 and its transfer's
    draws are keyed with copy 2."""
    draws = _Draws(monkeypatch, drop=[_rrq_copy(1)])

    async def main() -> None:
        async with _server(mode, timeout=5.0) as srv:
            with _Raw(srv.port) as client:
                await client.send(RRQ)
                await client.nothing(0.2)
                await client.send(RRQ)
                await client.data(1)
        assert draws.rrqs() == [_rrq_copy(1), _rrq_copy(2)]
        assert _sendings_of(draws.made) == {2}

    run(main())


@pytest.mark.parametrize("mode", MODES)
def test_a_request_resent_before_its_answer_was_acknowledged_is_copy_2(
        mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The transfer started but the client has not acknowledged DATA 1 (lost on the way, as far as the
    server knows): the same RRQ again is the client's retransmission, copy 2, which the running transfer
    ignores."""
    draws = _Draws(monkeypatch)

    async def main() -> None:
        async with _server(mode, timeout=5.0) as srv:
            with _Raw(srv.port) as client:
                await client.send(RRQ)
                tid = await client.data(1)
                await client.send(RRQ)
                await client.nothing(0.1)  # ignored: no DATA 1 again (and read before the ACK below)
                await client.send(_ack(1), tid)
                await client.data(2)
        assert draws.rrqs() == [_rrq_copy(1), _rrq_copy(2)]
        assert _sendings_of(draws.made) == {1}

    run(main())


@pytest.mark.parametrize("mode", MODES)
def test_a_one_block_transfer_never_acknowledged_counts_a_new_rrq_as_a_resend(
        mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A one-block file without options: DATA 1 is the last block and the only ACK the final one, so the
    server cannot tell the same RRQ again from a resend; it counts it as one (copy 2) and keys the transfer
    it starts with copy 2 (was 1: the lingering transfer's end reset the count after the RRQ drew 2)."""
    draws = _Draws(monkeypatch)

    async def main() -> None:
        small = {NAME: b"one block"}
        async with TftpServer(small, HOST, 0, tid_mode=mode, loss=0.5, timeout=5.0) as srv:  # type: ignore[arg-type]
            with _Raw(srv.port) as client:
                await client.send(RRQ)
                await client.data(1)
                await client.send(RRQ)
                await client.data(1)  # a new transfer's DATA 1, for copy 2
        assert draws.rrqs() == [_rrq_copy(1), _rrq_copy(2)]
        assert _sendings_of(draws.made) == {1, 2}

    run(main())


@pytest.mark.parametrize("mode", MODES)
def test_a_pooled_socket_draws_as_a_fresh_one(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end with phoneemu's own pool: the final ACK of a download is dropped, the server (timer 5 s)
    still waits for it when the pool reuses that socket for the same file (client timer 0.2 s). The second
    download meets the draws the first met (was: its RRQ drawn as copy 2)."""
    final_ack = ("tftp", NAME, 1, "heard", _ack(3), 1)
    draws = _Draws(monkeypatch, drop=[final_ack])
    outcomes = _Outcomes()
    pool = TftpClientPool(max_sockets=1, timeout=0.2, retries=2)

    async def main() -> tuple[list[What], list[What]]:
        async with _server(mode, timeout=5.0, on_request=outcomes) as srv:
            try:
                assert await pool.get(HOST, srv.port, NAME) == FILES[NAME]
                await draws.until(final_ack)
                first = draws.take()
                await asyncio.sleep(0.3)  # one client timeout: the pool reuses the socket
                assert await pool.get(HOST, srv.port, NAME) == FILES[NAME]
                await draws.until(final_ack)
                assert await outcomes.wait(1) == ["ok"]  # the first transfer, ended by the new request
                again = draws.take()
            finally:
                await pool.close()
        return first, again

    first, again = run(main())
    assert len({e.peer for e in outcomes.events}) == 1, "the pool did not reuse its socket"
    if mode == "shared":
        # the server answers the reused socket's RRQ with the lingering DATA 3 (a late copy, for all it
        # knows), the client re-ACKs it (the dally) and asks again: that copy counts for nothing, the request
        # again is copy 1 and draws as the first download did
        answered = [_rrq_copy(1), ("tftp", NAME, 1, "sent", encode(Data(block=3, data=b"tail"))[:4], 2),
                    ("tftp", NAME, 1, "heard", _ack(3), 2)]
        assert again == [*answered, *first], again
    else:
        assert first == again
