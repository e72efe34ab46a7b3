"""A firewall's silence on loopback for the real-cluster tests (``test_*_real_cluster_*``): a TCP port whose
SYNs are dropped, so a connection to it neither succeeds nor is refused (no iptables needed)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

__all__ = ["syn_dropping_port"]

_FILLERS = 3  # connections that fill the accept queue (one is held with backlog 0; the rest are dropped)


@contextlib.contextmanager
def syn_dropping_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port on ``host`` listening with backlog 0 and never accepting, its queue filled: Linux drops the SYNs
    of any further connection, as a firewall that drops packets does. Closed on exit."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind((host, 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(_FILLERS):
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            with contextlib.suppress(BlockingIOError):
                filler.connect((host, port))
        yield port
    finally:
        for sock in (*fillers, listener):
            sock.close()
