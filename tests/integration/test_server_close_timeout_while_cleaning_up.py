"""A time-out around a server close in a task already being cancelled (its owner cleaning up after Ctrl-C)
is raised by the close at once, as a time-out anywhere else is (phoneemu.net._listen.close_listening:
only the cancel already requested when the close began is held).

Before, the close held every cancel of such a task, the time-out's too, and passed it on after the
close: ``asyncio.timeout`` saw its block end normally, raised no TimeoutError (the code after the block
ran, unbounded), and a stray CancelledError hit the task's next await.
"""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from phoneemu.fleet.loop import run_on
from phoneemu.net.http import HttpServer
from phoneemu.net.tls import TlsServer

HOST = "127.0.0.1"
LOOPS = ["asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(
    importlib.util.find_spec("uvloop") is None, reason="uvloop not installed"))]


async def _serves_nothing(_reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
    """A handler never reached: no client connects."""


async def _started(kind: str) -> HttpServer | TlsServer:
    if kind == "http":
        return await HttpServer({"SEP001122334455.cnf.xml": b"<device/>"}, HOST, 0).start()
    return await TlsServer(_serves_nothing, None, HOST, 0).start()


async def _close_timed_out_while_cleaning_up(kind: str) -> list[str]:
    """What the owner sees: its task's cancel taken (cleaning up), then a close under a time-out that
    expires at once (``asyncio.timeout(0)`` fires in the close's first loop iteration)."""
    srv = await _started(kind)
    task = asyncio.current_task()
    assert task is not None
    seen: list[str] = []
    task.cancel()
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        seen.append(f"cleaning up ({task.cancelling()} cancel)")
    try:
        async with asyncio.timeout(0):
            await srv.close()
        seen.append("no TimeoutError")
    except TimeoutError:
        seen.append("TimeoutError")
    try:
        await asyncio.sleep(0)
        seen.append("next await ran")
    except asyncio.CancelledError:
        seen.append("stray CancelledError")
    await srv.close()  # what the timed-out close left (a no-op once closed)
    seen.append(f"{task.cancelling()} cancel")
    return seen


@pytest.mark.parametrize("loop_name", LOOPS)
@pytest.mark.parametrize("kind", ["http", "tls"])
def test_a_time_out_during_a_close_while_cleaning_up_is_raised_by_the_close(kind: str,
                                                                           loop_name: str) -> None:
    """TimeoutError from the block, no stray CancelledError after it, the task's one cancel request kept
    (old code: no TimeoutError, then a CancelledError at the next await)."""
    got = run_on(loop_name, asyncio.wait_for(_close_timed_out_while_cleaning_up(kind), 10.0))
    assert got == ["cleaning up (1 cancel)", "TimeoutError", "next await ran", "1 cancel"]
