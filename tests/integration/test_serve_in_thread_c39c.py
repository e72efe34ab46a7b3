"""``tests.helpers.serve_in_thread``: servers that cannot start raise their own error in the caller at once
(was: the exception died in the servers' thread, and the caller waited 60 s for a start, then failed on a
bare assert)."""

from __future__ import annotations

import errno
import socket
import threading
from typing import Any

import pytest

from phoneemu.errors import TransportError
from tests.helpers import lab_template, serve_in_thread

template = lab_template("serve-c39c", seed=None, phones={})


def test_a_taken_port_raises_the_bind_error_in_the_caller(cluster: Any) -> None:
    """The lab's TVS port is another socket's (listening): the lab's bind error (its OSError the cause)
    comes out of ``serve_in_thread`` itself, and no servers' thread is left behind."""
    before = set(threading.enumerate())
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(TransportError, match=f"cannot listen for tvs on 127.0.0.1:{port}") as caught:
            serve_in_thread(cluster, tvs_port=port)
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.__cause__.errno == errno.EADDRINUSE
    assert not [t for t in set(threading.enumerate()) - before if t.is_alive()]


def test_servers_that_start_still_serve_and_stop(cluster: Any) -> None:
    """The usual case is unchanged: the ports, and a ``stop()`` that ends the thread."""
    before = set(threading.enumerate())
    ports, stop = serve_in_thread(cluster)
    try:
        with socket.create_connection(("127.0.0.1", ports["tvs"]), timeout=5):
            pass
    finally:
        stop()
    assert not [t for t in set(threading.enumerate()) - before if t.is_alive()]
