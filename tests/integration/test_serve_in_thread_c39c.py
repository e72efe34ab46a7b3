"""``tests.helpers.serve_in_thread`` and ``lab_served_in_thread``: servers that cannot start raise their own
error in the caller at once (was: the exception died in the servers' thread, and the caller waited 60 s for
a start, then failed on a bare assert)."""

from __future__ import annotations

import errno
import socket
import threading
from typing import Any

import pytest

from phoneemu.errors import TransportError
from tests.helpers import lab_served_in_thread, lab_template, serve_in_thread

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


def test_a_taken_port_raises_the_bind_error_from_lab_served_in_thread(cluster: Any) -> None:
    """The same for ``lab_served_in_thread``: entering the block raises the lab's bind error, within 10 s
    (the caller enters it in a thread of its own, so that the old 60 s wait fails here, not after a
    minute), and no servers' thread is left behind."""
    before = set(threading.enumerate())
    outcome: dict[str, BaseException] = {}

    def enter() -> None:
        try:
            with lab_served_in_thread(cluster, tvs_port=port):
                pass
        except BaseException as exc:
            outcome["raised"] = exc

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        caller = threading.Thread(target=enter, daemon=True)
        caller.start()
        caller.join(10)
        assert not caller.is_alive(), "lab_served_in_thread still waits for servers that cannot start"
    raised = outcome.get("raised")
    assert isinstance(raised, TransportError), raised
    assert f"cannot listen for tvs on 127.0.0.1:{port}" in str(raised)
    assert isinstance(raised.__cause__, OSError)
    assert raised.__cause__.errno == errno.EADDRINUSE
    assert not [t for t in set(threading.enumerate()) - before if t.is_alive()]


def test_lab_servers_that_start_still_serve_run_on_their_loop_and_stop(cluster: Any) -> None:
    """The usual case of ``lab_served_in_thread`` is unchanged: the running servers, an ``on_loop`` that
    runs a call (and awaits an awaitable) on the servers' thread, and an end of the block that ends it."""
    before = set(threading.enumerate())
    with lab_served_in_thread(cluster) as (srv, on_loop):
        with socket.create_connection(("127.0.0.1", srv.ports["tvs"]), timeout=5):
            pass
        assert on_loop(threading.current_thread) not in (threading.current_thread(), None)

        async def answer() -> int:
            return 42
        assert on_loop(answer) == 42
    assert not [t for t in set(threading.enumerate()) - before if t.is_alive()]
