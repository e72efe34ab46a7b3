"""``interrupts.asyncio_run`` called while an event loop runs in the thread (a loop run by
``run_until_complete``, SIGINT Python's handler): ``asyncio.run``'s RuntimeError, and nothing changed — the
thread's current loop, the signal handlers. Was: a second loop made and run (another RuntimeError, "Cannot
run the event loop while another loop is running"), the thread's current loop unset and that loop left
unclosed (a ResourceWarning)."""

from __future__ import annotations

import asyncio
import signal
import threading

import pytest

from phoneemu import interrupts
from tests.signal_rules import signals_as_commands_set_them

pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="signal handlers are the main thread's")


async def _answer() -> int:
    return 42


def test_under_a_running_loop_it_refuses_as_asyncio_run_does() -> None:
    outer = asyncio.new_event_loop()
    with signals_as_commands_set_them():
        asyncio.set_event_loop(outer)
        try:
            async def call_it() -> None:
                inner = _answer()
                try:
                    with pytest.raises(RuntimeError, match="cannot be called from a running event loop"):
                        interrupts.asyncio_run(inner)
                finally:
                    inner.close()  # never run (asyncio.run leaves it to its caller)

            outer.run_until_complete(call_it())
            assert asyncio.get_event_loop_policy().get_event_loop() is outer
            assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        finally:
            asyncio.set_event_loop(None)
            outer.close()


def test_with_no_loop_running_it_runs_the_coroutine() -> None:
    with signals_as_commands_set_them():
        assert interrupts.asyncio_run(_answer()) == 42
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
