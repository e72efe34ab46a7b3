"""What the kernel says of a connection for the room rule of a server that does not see its reads
(phoneemu.net._room: accept_queue, spoke_within), checked with real loopback sockets: Linux's ``struct
tcp_info`` read at the offsets the module names (tcpi_unacked of a listener: the connections waiting in its
accept queue; tcpi_last_data_recv: milliseconds since data last came)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from phoneemu.net._room import KERNEL_SAYS, accept_queue, input_waits, spoke_within

pytestmark = pytest.mark.skipif(not KERNEL_SAYS, reason="the kernel does not say (Linux's TCP_INFO)")


@contextlib.contextmanager
def _listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock
    finally:
        sock.close()


def _queued(listener: socket.socket, count: int) -> bool:
    """Whether ``accept_queue`` reaches ``count`` within 5 s (the handshakes end in the kernel)."""
    for _ in range(500):
        if accept_queue(listener) == count:
            return True
        time.sleep(0.01)
    return False


def test_accept_queue_counts_the_connections_waiting_to_be_accepted() -> None:
    with _listener() as listener:
        assert accept_queue(listener) == 0
        clients = [socket.create_connection(listener.getsockname(), timeout=5) for _ in range(3)]
        try:
            assert _queued(listener, 3)  # (offset 28, tcpi_sacked, would say the backlog: 16)
            conn, _ = listener.accept()
            conn.close()
            assert accept_queue(listener) == 2
        finally:
            for c in clients:
                c.close()


def test_spoke_within_says_when_data_last_came() -> None:
    """A client silent 0.3 s since it connected (but for its ACK of a byte sent to it): not heard within
    0.2 s; a byte from it: heard (read or not). The kernel's times are in jiffies: a few milliseconds either
    way, well inside these margins. Each check fails at a neighbouring field's offset (said where)."""
    with _listener() as listener, socket.create_connection(listener.getsockname(), timeout=5) as client:
        conn, _ = listener.accept()
        with conn:
            time.sleep(0.3)
            conn.sendall(b"y")  # its client's ACK of it is no data (offset 56, tcpi_last_ack_recv, says it)
            assert client.recv(1) == b"y"
            time.sleep(0.05)
            assert not spoke_within(conn, 0.2)  # (tcpi_last_data_recv: since the connection was made)
            client.sendall(b"x")
            for _ in range(500):  # the byte arrives (bounded: 5 s)
                if input_waits(conn):
                    break
                time.sleep(0.01)
            assert spoke_within(conn, 0.2)  # (offset 44, tcpi_last_data_sent, would still say 0.3 s)
            assert conn.recv(1) == b"x"
            assert spoke_within(conn, 0.2)  # read: the kernel still says when it came


def test_a_closed_socket_says_nothing() -> None:
    with _listener() as listener:
        listener.close()
        assert accept_queue(listener) == 0
        assert not spoke_within(listener, 60)
