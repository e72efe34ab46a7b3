"""The UDP endpoint of the TFTP client and server with ICMP errors reported (Linux ``IP_RECVERR``).

An ICMP error queued for a datagram to one peer fails the socket's next ``sendto``, whatever its
peer: that datagram is sent once more after the queued errors are handed over, not lost.
"""

from __future__ import annotations

import asyncio
import errno
import select
import socket
import sys

import pytest

from phoneemu.net._udp import PeerError, UdpSocket, bound_udp_socket, report_icmp_errors
from tests.helpers import run_within
from tests.integration.test_tftp import HOST

run = run_within(10)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="ICMP errors of UDP sockets: IP_RECVERR")


def _closed_port() -> int:
    """A UDP port nothing listens on (bound, then closed): the kernel answers ICMP port unreachable."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _wait_for_queued_error(sock: socket.socket) -> None:
    """Until the kernel has queued an ICMP error for ``sock`` (POLLERR; 2 s at most)."""
    poller = select.poll()
    poller.register(sock, select.POLLERR)
    assert poller.poll(2000), "no ICMP error queued"


def test_a_send_meeting_a_pending_icmp_error_goes_out_once_more() -> None:
    """Old code: the send that met the error queued for another peer's closed port was dropped (a
    shared-mode server's DATA to another client, a pooled client's next RRQ: a retransmission timeout
    later). Now the error goes to ``on_error`` and the datagram to its peer."""
    errors: list[OSError] = []

    async def main() -> None:
        sock = bound_udp_socket(HOST, 0)
        udp = UdpSocket(asyncio.get_running_loop(), sock, lambda _data, _addr: None, errors.append,
                        max_batch=1)
        udp.icmp_errors = report_icmp_errors(sock)
        live = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        live.bind((HOST, 0))
        live.settimeout(2.0)
        try:
            assert udp.icmp_errors
            nobody = (HOST, _closed_port())
            udp.sendto(b"to nobody", nobody)
            _wait_for_queued_error(sock)  # no await in between: the reader cannot drain it first
            udp.sendto(b"to the live peer", live.getsockname())
            assert live.recvfrom(100) == (b"to the live peer", sock.getsockname())
            assert [(type(e), e.errno, getattr(e, "peer", None)) for e in errors] == [
                (PeerError, errno.ECONNREFUSED, nobody)]
            assert udp.send_drops == 0
        finally:
            udp.close()
            live.close()

    run(main())
