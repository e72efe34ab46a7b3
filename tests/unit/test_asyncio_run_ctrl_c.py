"""``phoneemu.interrupts.asyncio_run``: asyncio.run whose Ctrl-C (a SIGTERM: term_as_ctrl_c) is a
KeyboardInterrupt at every moment. asyncio.run sets its SIGINT handler, then zeroes its count of Ctrl-Cs
(CPython 3.11 ``asyncio.Runner.run``): one that came in between cancelled the main task uncounted and a
CancelledError escaped — ``phoneemu boot`` printed a traceback and exited 1 for a SIGTERM. With SIGINT
ignored (a shell's background job) asyncio sets no handler and a SIGTERM raised KeyboardInterrupt inside
asyncio's own code: a task never stepped again, the loop's close waited for it for good."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from phoneemu import interrupts
from phoneemu.interrupts import asyncio_run
from tests.signal_rules import signals_as_commands_set_them


@pytest.fixture
def python_ctrl_c() -> Iterator[None]:
    """SIGINT as Python sets it (KeyboardInterrupt) and SIGTERM as every command has it; both given back."""
    with signals_as_commands_set_them():
        yield


def _signal_as_the_run_sets_its_handler(monkeypatch: pytest.MonkeyPatch, signum: int) -> list[Any]:
    """``signum`` raised just after the run's own SIGINT handler is set (not a restore, not
    ctrl_c_deferred's): the moment asyncio.run lost it. The list gets the handler that met it."""
    real = signal.signal
    met: list[Any] = []

    def set_then_signal(sig: int, handler: Any) -> Any:
        old = real(sig, handler)
        if sig == signal.SIGINT and callable(handler) and handler is not signal.default_int_handler \
                and not isinstance(handler, interrupts._Held) and not met:
            met.append(handler)
            signal.raise_signal(signum)
        return old

    monkeypatch.setattr(signal, "signal", set_then_signal)
    return met


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_ctrl_c_as_the_run_sets_its_handler_is_a_keyboard_interrupt(
        python_ctrl_c: None, monkeypatch: pytest.MonkeyPatch, signum: int) -> None:
    started: list[str] = []

    async def main() -> str:
        started.append("main")
        return "done"

    met = _signal_as_the_run_sets_its_handler(monkeypatch, signum)
    with pytest.raises(KeyboardInterrupt):
        asyncio_run(main())
    monkeypatch.undo()
    assert met, "the run set no SIGINT handler of its own"
    assert started == []  # cancelled before it ran: closed, no "never awaited" warning (-W error)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_while_the_main_task_runs_cancels_it_then_raises(python_ctrl_c: None) -> None:
    steps: list[str] = []

    async def main() -> None:
        try:
            asyncio.get_running_loop().call_later(0.05, signal.raise_signal, signal.SIGTERM)
            await asyncio.sleep(30)
            steps.append("slept")
        except asyncio.CancelledError:
            steps.append("cancelled")  # its clean-up runs
            raise

    with pytest.raises(KeyboardInterrupt):
        asyncio_run(main())
    assert steps == ["cancelled"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_while_the_task_ends_raises_at_once(python_ctrl_c: None) -> None:
    steps: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(signal.raise_signal, signal.SIGINT)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            steps.append("cancelled")
            loop.call_soon(signal.raise_signal, signal.SIGINT)  # the second, during a slow clean-up
            for _ in range(100):
                steps.append("clean-up step")
                await asyncio.sleep(0)

    with pytest.raises(KeyboardInterrupt):
        asyncio_run(main())
    assert steps[0] == "cancelled" and len(steps) < 101, steps  # the clean-up did not run to its end
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_cancellation_that_is_no_ctrl_c_is_not_renamed(python_ctrl_c: None) -> None:
    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)

    with pytest.raises(asyncio.CancelledError):
        asyncio_run(main())


def test_the_result_and_the_handlers_are_as_asyncio_run_has_them(python_ctrl_c: None) -> None:
    seen: list[Any] = []

    async def main() -> int:
        seen.append(signal.getsignal(signal.SIGINT))
        return 7

    assert asyncio_run(main()) == 7
    assert callable(seen[0]) and seen[0] is not signal.default_int_handler  # a handler of the run's own
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a shell's background job: asyncio.run's rule
    try:
        assert asyncio_run(main()) == 7
        assert seen[1] == signal.SIG_IGN and signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)


def test_with_sigint_ignored_a_sigterm_cancels_the_task_a_ctrl_c_stays_ignored(python_ctrl_c: None) -> None:
    steps: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(signal.raise_signal, signal.SIGINT)  # ignored: nothing happens
        loop.call_later(0.05, signal.raise_signal, signal.SIGTERM)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            steps.append("cancelled")  # not a KeyboardInterrupt raised wherever the loop was
            raise

    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with pytest.raises(KeyboardInterrupt):
            asyncio_run(main())
        assert steps == ["cancelled"]
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is interrupts._on_term  # given back
    finally:
        signal.signal(signal.SIGINT, old)


def test_a_ctrl_c_as_the_loop_closes_is_raised_once_it_is_closed(python_ctrl_c: None) -> None:
    """asyncio.run gives its handler back before closing the loop: a SIGTERM then raised KeyboardInterrupt
    inside asyncio's own code (a profiled boot: "Event loop stopped before Future completed", exit 1)."""
    steps: list[str] = []

    async def leftover() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:  # cancelled as the loop closes
            signal.raise_signal(signal.SIGTERM)
            steps.append("clean-up ran to its end")
            raise

    async def main() -> int:
        steps.append("main")
        asyncio.get_running_loop().create_task(leftover())  # the loop holds it until it closes
        await asyncio.sleep(0)
        return 7

    with pytest.raises(KeyboardInterrupt):
        asyncio_run(main())
    assert steps == ["main", "clean-up ran to its end"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
