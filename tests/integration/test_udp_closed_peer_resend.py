"""A send meeting a pending ICMP error for its own peer is not sent again (Linux ``IP_RECVERR``).

Rules (:mod:`phoneemu.net._udp`): the send that fails with a queued ICMP error hands the queued errors to
``on_error`` and is sent once more, unless one of those errors names the very address it goes to — that
peer's port is closed: the datagram is dropped (``send_drops``), not sent to meet another "port
unreachable". The address is compared however the kernel spells it (an IPv6 4-tuple, IPv4-mapped).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
from typing import Any

import pytest

from phoneemu.net import _udp
from phoneemu.net._udp import PeerError, UdpSocket, report_icmp_errors
from tests.helpers import run_within, v6_loopback_missing
from tests.integration.test_tftp_udp_errors import _wait_for_queued_error

run = run_within(10)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="ICMP errors of UDP sockets: IP_RECVERR")


class _CountingSocket(socket.socket):
    """A UDP socket that records where each ``sendto`` was asked to send (sent or failed)."""

    sent_to: list[Any]

    def sendto(self, data: Any, *args: Any) -> int:
        self.sent_to.append(args[-1])
        return super().sendto(data, *args)


def _counting_socket(family: int, host: str) -> _CountingSocket:
    sock = _CountingSocket(family, socket.SOCK_DGRAM)
    sock.sent_to = []
    sock.setblocking(False)
    sock.bind((host, 0))
    return sock


def _closed_port(family: int, host: str) -> int:
    """A UDP port nothing listens on (bound, then closed): the kernel answers ICMP port unreachable."""
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@linux_only
@pytest.mark.parametrize("family,host", [
    (socket.AF_INET, "127.0.0.1"),
    pytest.param(socket.AF_INET6, "::1",
                 marks=pytest.mark.skipif(v6_loopback_missing() is not None, reason="no ::1")),
])
def test_a_send_to_the_peer_whose_port_is_closed_is_not_sent_again(family: int, host: str) -> None:
    """Old code: the second datagram to the closed port failed on the error it had queued, and was sent
    once more (three sends, a third "port unreachable"). Now the error, naming that peer, goes to
    ``on_error`` and the datagram is dropped: two sends, one drop. (IPv6: the kernel names the peer as a
    4-tuple, the sender gave a 2-tuple.)"""
    errors: list[OSError] = []

    async def main() -> None:
        sock = _counting_socket(family, host)
        udp = UdpSocket(asyncio.get_running_loop(), sock, lambda _data, _addr: None, errors.append,
                        max_batch=1)
        udp.icmp_errors = report_icmp_errors(sock)
        try:
            assert udp.icmp_errors
            nobody = (host, _closed_port(family, host))
            udp.sendto(b"first", nobody)
            _wait_for_queued_error(sock)  # no await in between: the reader cannot drain it first
            udp.sendto(b"second", nobody)
            assert sock.sent_to == [nobody, nobody]
            assert udp.send_drops == 1
            assert [(type(e), e.errno, getattr(e, "peer", ())[:2]) for e in errors] == [
                (PeerError, errno.ECONNREFUSED, nobody)]
        finally:
            udp.close()

    run(main())


@pytest.mark.parametrize("a,b,same", [
    (("127.0.0.1", 69), ("127.0.0.1", 69), True),
    (("::1", 69), ("::1", 69, 0, 0), True),
    (("::ffff:127.0.0.1", 69, 0, 0), ("127.0.0.1", 69), True),
    (("fe80::1%lo", 69, 0, 1), ("fe80::1", 69, 0, 1), True),
    (("127.0.0.1", 69), ("127.0.0.1", 70), False),
    (("127.0.0.1", 69), ("127.0.0.2", 69), False),
    (("tftp.lab", 69), ("127.0.0.1", 69), False),
    ((), ("127.0.0.1", 69), False),
])
def test_same_peer_compares_addresses_however_spelt(a: tuple[Any, ...], b: tuple[Any, ...],
                                                     same: bool) -> None:
    assert _udp._same_peer(a, b) is same
