"""The TFTP client's per-datagram and per-request paths stay lean (issue #6: a fleet boot is ~85 datagrams).

* A DATA block is acknowledged with no call of the client's but the socket's send (``_Transfer._send``
  inlined),
  and the transfer's state moves as before: the ACK kept for a retransmission, the deadline one
  timeout from now.
* :meth:`TftpClientPool.get` of an IP address asks no resolver coroutine; a host name still does.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from phoneemu.errors import TransportError
from phoneemu.net import tftp_client
from phoneemu.net.tftp_client import TftpClientPool, _Transfer
from tests.helpers import calls_of

SERVER = ("127.0.0.1", 6969)


class _Loop:
    """What a transfer asks of its loop while it takes a datagram (a fixed clock)."""

    def __init__(self, real: asyncio.AbstractEventLoop) -> None:
        self.real = real

    def create_future(self) -> asyncio.Future[bytes]:
        return self.real.create_future()

    def time(self) -> float:
        return 100.0


class _Transport:
    """A UdpSocket's sending side: ``sendto``, and ``closed``/``sock`` for a caller that sends on the socket
    itself (the client's ACKs: ``sock`` is this object, its ``sendto`` records)."""

    closed = False

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[Any, ...]]] = []
        self.sock = self

    def sendto(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.sent.append((data, addr))


def test_a_data_block_costs_one_call_the_send() -> None:
    real = asyncio.new_event_loop()
    try:
        transport = _Transport()
        t = _Transfer(_Loop(real), transport, SERVER, "f", blksize=None, timeout=2.0,  # type: ignore[arg-type]
                      retries=3, tsize=False, max_size=1 << 20, on_retransmit=None)
        block1 = b"\x00\x03\x00\x01" + b"a" * 512
        calls = calls_of(t.on_datagram, block1, SERVER, module=tftp_client.__file__)
        assert calls == []  # the send is the transport's
        assert transport.sent == [(b"\x00\x04\x00\x01", SERVER)]
        assert t.last_pkt == b"\x00\x04\x00\x01" and t.deadline == 102.0 and t.tid == SERVER
        assert not t.fut.done() and t.expected == 2
        t.on_datagram(b"\x00\x03\x00\x02" + b"b" * 7, SERVER)  # the last block: shorter
        assert transport.sent[-1] == (b"\x00\x04\x00\x02", SERVER)
        assert t.fut.result() == b"a" * 512 + b"b" * 7
    finally:
        real.close()


def _closed_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


@pytest.mark.parametrize(("host", "resolved"), [("127.0.0.1", 0), ("localhost", 1)])
def test_an_address_asks_no_resolver(monkeypatch: pytest.MonkeyPatch, host: str, resolved: int) -> None:
    calls: list[str] = []
    real = tftp_client._resolve

    async def counting(h: str, p: int) -> tuple[Any, ...]:
        calls.append(h)
        return ("127.0.0.1", p)  # (localhost may resolve to ::1 first; the closed port is IPv4's)

    monkeypatch.setattr(tftp_client, "_resolve", counting)
    assert real is not counting
    port = _closed_udp_port()

    async def main() -> TransportError:
        pool = TftpClientPool(timeout=0.3, retries=1, quarantine_s=0)
        try:
            with pytest.raises(TransportError) as info:
                await pool.get(host, port, "SEP0A0000000001.cnf.xml")
            return info.value
        finally:
            await pool.close()

    err = asyncio.run(asyncio.wait_for(main(), 10))
    assert err.kind in ("unreachable", "timeout")  # nothing listens there (ICMP where the kernel says it)
    assert len(calls) == resolved
