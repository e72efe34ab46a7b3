"""A server closed in the loop iteration right after it accepted a connection (CPython gh-109564, open for
Python 3.11) ends that connection at once (phoneemu.net._listen.close_listening, module rules).

Before, on the asyncio loop the accepted connection's transport failed half-built (``Server._attach``
asserts once the server is closed) and its socket waited for the garbage collector, an "unclosed
transport" ResourceWarning then; on uvloop its handler started after the close and served on, untracked.
Either way the peer hung: an HTTP client until the idle time-out, a TVS or CAPF client for ever.

The race: the client connects (on loopback the connection is in the listen queue when ``connect``
returns); the owner's task yields twice — the first time its next step is queued before the listening
socket's accept callback, the second time after it — and closes then. Other yield counts (0, 1, 3) are
the windows around it; none may leave the peer waiting either. The garbage collector is off meanwhile,
so that it cannot end a lost connection by chance.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import logging
import socket
import ssl
import warnings
from collections.abc import Iterator
from functools import cache

import pytest

from phoneemu.fleet.loop import run_on
from phoneemu.net.http import HttpServer
from phoneemu.net.tls import TlsServer
from tests.helpers import port_free, self_signed_server_context

HOST = "127.0.0.1"
ENDED_WITHIN = 2.0  # seconds the peer may wait for its connection's end (it comes at once)
LOOPS = ["asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(
    importlib.util.find_spec("uvloop") is None, reason="uvloop not installed"))]
KINDS = ["http", "tcp", "tls"]


@cache
def _tls_context() -> ssl.SSLContext:
    return self_signed_server_context("closerace", 7)


async def _never_ends(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
    """A handler that serves until the peer leaves (a TVS or CAPF session waiting for its next request)."""
    await reader.read()


async def _started(kind: str) -> HttpServer | TlsServer:
    if kind == "http":
        return await HttpServer({"SEP001122334455.cnf.xml": b"<device/>"}, HOST, 0, idle_timeout=30.0).start()
    ctx = _tls_context() if kind == "tls" else None
    return await TlsServer(_never_ends, ctx, HOST, 0, handshake_timeout=30.0).start()


async def _peer_sees_end(client: socket.socket) -> bool:
    """Whether the peer sees its connection end (end of stream or reset) within :data:`ENDED_WITHIN` s."""
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.sock_recv(client, 16), ENDED_WITHIN) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def _close_right_after_accept(kind: str, yields: int) -> bool:
    srv = await _started(kind)
    with socket.create_connection((HOST, srv.port), timeout=5) as client:
        client.setblocking(False)
        for _ in range(yields):
            await asyncio.sleep(0)
        await srv.close()
        return await _peer_sees_end(client)


@pytest.fixture
def no_collector() -> Iterator[None]:
    """The collector off, and what the worker held before the test frozen out of its reach
    (``gc.freeze``): the test's ``gc.collect()`` looks only at what the test made, a lost connection among
    it, not at the whole heap of a worker late in a run (~0.2 s a collection there, 24 tests)."""
    gc.disable()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.enable()


@pytest.mark.usefixtures("no_collector")
@pytest.mark.parametrize("loop_name", LOOPS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("yields", [0, 1, 2, 3])
def test_a_connection_accepted_just_before_close_ends_with_it(
        kind: str, loop_name: str, yields: int, caplog: pytest.LogCaptureFixture) -> None:
    """The peer sees its connection end at once; nothing is left for the garbage collector (no
    ResourceWarning), no task is left pending, no error is logged (old code: the peer waited)."""
    async def main() -> bool:
        return await asyncio.wait_for(_close_right_after_accept(kind, yields), 10.0)

    with caplog.at_level(logging.DEBUG, logger="asyncio"), warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ended = run_on(loop_name, main())
        gc.collect()
    assert ended
    assert [str(w.message) for w in seen] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize("loop_name", LOOPS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_close_cancelled_while_accepts_settle_closes_everything_and_raises(kind: str,
                                                                             loop_name: str) -> None:
    """``close_listening`` yields before it closes (the accepts under way settle); a cancel that comes
    there (a time-out) still closes the listener (the port free) and ends the connection it had accepted,
    and is raised by the close itself: the caller's code after the close does not run (an
    ``asyncio.timeout`` around it keeps its bound). A guard for the new yields: the old close closed
    before its first await."""
    async def attempt() -> tuple[bool, bool, list[str]]:
        srv = await _started(kind)
        port = srv.port
        reached: list[str] = []

        async def closer() -> None:
            await srv.close()
            reached.append("after the close")

        with socket.create_connection((HOST, port), timeout=5) as client:
            client.setblocking(False)
            await asyncio.sleep(0.05)  # accepted, its handler running
            closing = asyncio.ensure_future(closer())
            await asyncio.sleep(0)
            closing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await closing
            ended = await _peer_sees_end(client)
        await srv.close()  # what the cancelled close left to await
        return ended, port_free(HOST, port), reached

    async def main() -> tuple[bool, bool, list[str]]:
        return await asyncio.wait_for(attempt(), 10.0)

    assert run_on(loop_name, main()) == (True, True, [])


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_cancel_that_comes_while_an_owner_closes_its_servers_leaves_none_open(loop_name: str) -> None:
    """The owner's task closes three servers one after another (``LabServers.stop``) with a cancel
    requested as it begins (Ctrl-C: asyncio's handler cancels the running task). Each close does all its
    work and passes the cancel on; the owner ends cancelled with every port free. Without the hand-on the
    cancel ended the first close's settling and skipped the other two (left to the garbage collector;
    ``phoneemu run`` stopped by SIGTERM left its lab's TVS, HTTP and TFTP sockets so)."""
    async def owner(servers: list[HttpServer | TlsServer]) -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()  # the request a signal handler makes while the task runs
        try:
            for srv in servers:
                with contextlib.suppress(Exception):  # as LabServers._stop_all: a CancelledError goes through
                    await srv.close()
        finally:
            assert task.cancelling() == 1  # still one request: asyncio.timeout and task groups count them
        await asyncio.sleep(0)  # where the cancel lands

    async def main() -> list[bool]:
        servers = [await _started(kind) for kind in KINDS]
        ports = [srv.port for srv in servers]
        closing = asyncio.ensure_future(owner(servers))
        with contextlib.suppress(asyncio.CancelledError):
            await closing
        freed = [port_free(HOST, port) for port in ports]
        for srv in servers:  # what a failed test left open (closing again is a no-op)
            await srv.close()
        assert closing.cancelled()
        return freed

    assert run_on(loop_name, asyncio.wait_for(main(), 10.0)) == [True, True, True]
