"""A TFTP client pool's close, and a client socket whose reader cannot be registered.

* A :meth:`TftpClientPool.get` not yet downloading when the pool closes — waiting for a slot, handed one
  but not yet resumed, or resolving a host name — ends with the closed pool's error ("client pool
  closed", as a ``get`` on a closed pool) at once, and opens no socket (was: it waited for a slot, then
  downloaded on the closed pool).
* ``_Endpoint`` closes the socket it made when ``UdpSocket`` refuses it (``add_reader`` on a closed loop)
  (was: left open until collected).

The states are driven directly (the pool's slots taken and given by the test, a name lookup held on a
future): no server, no socket but the one of the last test, no timing.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest

from phoneemu.errors import TransportError
from phoneemu.net import _udp, tftp_client
from phoneemu.net.tftp_client import TftpClientPool

HOST = "127.0.0.1"
PORT = 9  # (discard: never reached, the tests open no socket)
TURNS = 20  # loop turns a step may take at most (each test's waits are bounded)


async def _turns_until(cond: Callable[[], bool]) -> bool:
    """Let the loop run, at most :data:`TURNS` turns, until ``cond()``; whether it came true."""
    for _ in range(TURNS):
        if cond():
            return True
        await asyncio.sleep(0)
    return cond()


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files the pool opened a socket for: none may be (it fails the download if one is)."""
    names: list[str] = []

    def no_socket(family: int, loop: asyncio.AbstractEventLoop, name: str) -> Any:
        names.append(name)
        raise TransportError(f"a socket opened for {name}", kind="error", path=name)

    monkeypatch.setattr(tftp_client, "_open_endpoint", no_socket)
    return names


def _closed_pool_error(task: asyncio.Task[bytes]) -> str:
    exc = task.exception()
    assert isinstance(exc, TransportError), repr(exc)
    assert exc.kind == "error"
    return str(exc)


async def _error_once_closed(pool: TftpClientPool, task: asyncio.Task[bytes], *,
                             after_close: Callable[[], object] = lambda: None) -> str:
    """Close ``pool`` (then ``after_close()``); the error ``task``'s get ended with, within :data:`TURNS`
    turns; the task cancelled whatever happened."""
    try:
        await pool.close()
        after_close()
        assert await _turns_until(task.done)
        return _closed_pool_error(task)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_a_get_waiting_for_a_slot_ends_when_the_pool_closes(
        loop: asyncio.AbstractEventLoop, opened: list[str]) -> None:
    """The pool's one slot held; a get waits for it; the pool closes: the get ends within a few loop turns
    with the closed pool's error, no socket opened (was: it waited on until a slot came back)."""

    async def main() -> tuple[bool, str, int]:
        pool = TftpClientPool(max_sockets=1, quarantine_s=0)
        await pool._slots.take(loop)  # the only slot, held as a transfer would hold it
        task = asyncio.create_task(pool.get(HOST, PORT, "SEP001.cnf.xml"))
        try:
            assert await _turns_until(lambda: bool(pool._slots.waiting))
            await pool.close()
            ended = await _turns_until(task.done)
            return ended, _closed_pool_error(task) if ended else "", len(pool._slots.waiting)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    ended, error, waiting = loop.run_until_complete(main())
    assert ended, "a get waiting for a slot outlived its pool's close"
    assert (error, waiting, opened) == ("client pool closed", 0, [])


def test_a_get_handed_a_slot_as_the_pool_closes_opens_no_socket(
        loop: asyncio.AbstractEventLoop, opened: list[str]) -> None:
    """A waiter handed the slot given back, the pool closed before it resumes: it ends with the closed
    pool's error and opens no socket (was: it opened one and downloaded on the closed pool)."""

    async def main() -> str:
        pool = TftpClientPool(max_sockets=1, quarantine_s=0)
        await pool._slots.take(loop)
        task = asyncio.create_task(pool.get(HOST, PORT, "SEP001.cnf.xml"))
        assert await _turns_until(lambda: bool(pool._slots.waiting))
        pool._slots.give()  # the slot goes to the waiter; it resumes after close() has begun
        assert not pool._slots.waiting and not task.done()
        return await _error_once_closed(pool, task)

    assert (loop.run_until_complete(main()), opened) == ("client pool closed", [])


def test_a_get_resolving_a_name_as_the_pool_closes_opens_no_socket(
        loop: asyncio.AbstractEventLoop, opened: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A get past the closed check, its host name being resolved, when the pool closes: once resolved it
    ends with the closed pool's error and opens no socket, though a slot is free."""
    answer: asyncio.Future[None] = loop.create_future()

    async def held_lookup(host: str, port: int) -> tuple[str, int]:
        await answer
        return HOST, port

    monkeypatch.setattr(tftp_client, "_resolve", held_lookup)

    async def main() -> str:
        pool = TftpClientPool(max_sockets=4, quarantine_s=0)
        task = asyncio.create_task(pool.get("tftp.lab.example", PORT, "SEP001.cnf.xml"))
        assert await _turns_until(lambda: pool.requests == 1)
        return await _error_once_closed(pool, task, after_close=lambda: answer.set_result(None))

    assert (loop.run_until_complete(main()), opened) == ("client pool closed", [])


def test_an_endpoint_refused_by_its_loop_closes_its_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """``UdpSocket`` raising (``add_reader`` on a closed loop: RuntimeError): the error goes up and the socket
    ``_Endpoint`` made is closed, not left open until collected."""
    made: list[socket.socket] = []
    real = _udp.client_udp_socket  # (the endpoint's: tftp_client imports it)

    def recorded(family: int) -> socket.socket:
        sock = real(family)
        made.append(sock)
        return sock

    monkeypatch.setattr(tftp_client, "client_udp_socket", recorded)
    closed_loop = asyncio.new_event_loop()
    closed_loop.close()
    try:
        with pytest.raises(RuntimeError, match="closed"):
            tftp_client._Endpoint(socket.AF_INET, closed_loop)
        assert len(made) == 1
        assert made[0].fileno() == -1, "the endpoint's socket was left open"
    finally:
        for sock in made:
            sock.close()
