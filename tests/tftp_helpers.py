"""Helpers shared by the tests of the phone's TFTP client against a scripted server: a UDP server on
loopback, run on a thread of its own, that collects what the client sends it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

#: what a scripted server does with its socket: read (adding what it reads to the list) and answer
Serve = Callable[[socket.socket, list[bytes]], None]


def udp_server(serve: Serve, *, timeout: float = 3.0) -> tuple[int, list[bytes], threading.Event]:
    """A UDP socket on 127.0.0.1 (each read on it bounded by ``timeout`` s) that ``serve(sock, got)`` runs on
    a daemon thread: ``serve`` returning or an OSError (a read timed out: the client is gone) ends it, the
    socket closed and ``done`` set then. Returns its port, ``got`` (what ``serve`` collected) and ``done``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(timeout)
    got: list[bytes] = []
    done = threading.Event()

    def serving() -> None:
        try:
            serve(sock, got)
        except OSError:
            pass
        finally:
            sock.close()
            done.set()

    threading.Thread(target=serving, daemon=True).start()
    return int(sock.getsockname()[1]), got, done
