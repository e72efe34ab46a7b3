"""Scripted TLS servers on loopback threads, for tests of clients meeting a server that misbehaves: each
connection, once its handshake is done, is handed to the test's ``exchange``."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


@contextlib.contextmanager
def threaded_tls_servers(ctx: ssl.SSLContext, exchange: Callable[[ssl.SSLSocket, T], None],
                         *, read_timeout: float | None = None) -> Iterator[Callable[[T], str]]:
    """``start(arg) -> "127.0.0.1:PORT"``: a TLS server (``ctx``) on a thread of its own, each connection's
    TLS socket given to ``exchange(tls, arg)`` (its errors, a client gone, ignored); ``read_timeout``: each
    connection's socket timeout. Every server stops at the end (its accept polls every 0.1 s; joined)."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def serve(sock: socket.socket, arg: T) -> None:
        with sock:
            while not stop.is_set():
                try:
                    conn, _ = sock.accept()
                except TimeoutError:
                    continue
                if read_timeout is not None:
                    conn.settimeout(read_timeout)
                with conn, contextlib.suppress(OSError), ctx.wrap_socket(conn, server_side=True) as tls:
                    exchange(tls, arg)

    def start(arg: T) -> str:
        sock = socket.create_server(("127.0.0.1", 0))
        sock.settimeout(0.1)
        t = threading.Thread(target=serve, args=(sock, arg), daemon=True)
        t.start()
        threads.append(t)
        return f"127.0.0.1:{sock.getsockname()[1]}"

    try:
        yield start
    finally:
        stop.set()
        for t in threads:
            t.join(5)
