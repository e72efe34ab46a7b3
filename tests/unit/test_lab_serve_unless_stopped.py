"""``lab serve``'s ``_unless_stopped(work, stop)``: ``work``'s result, or None when ``stop`` is set first
(``work`` cancelled and waited for). Cancelled while it waits for the cancelled ``work`` to end, it goes
on waiting (``work``'s cleanup not cut) and then raises CancelledError: the caller's cancel is never
lost (asyncio cancellation semantics, as a TaskGroup's)."""

from __future__ import annotations

import asyncio

import pytest

from phoneemu.commands.lab_serve import _unless_stopped
from tests.helpers import run


class _Work:
    """A start that takes its time to clean up when cancelled (it closes what it bound)."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.release = asyncio.Event()
        self.cleaned_up = False

    async def __call__(self) -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled.set()
            await self.release.wait()  # the cleanup: must not be cut by a second cancel
            self.cleaned_up = True
            raise
        return "started"


async def _hops(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_caller_cancel_while_waiting_for_a_stopped_work_is_raised_after_its_cleanup() -> None:
    """Old code: the cancel went into ``work`` (its cleanup cut) and came back as ``work``'s own
    CancelledError, suppressed: ``_unless_stopped`` returned None, the caller's cancel lost."""
    async def main() -> None:
        work, stop = _Work(), asyncio.Event()
        serve = asyncio.ensure_future(_unless_stopped(work(), stop))
        await _hops()
        stop.set()  # a signal: work cancelled, its cleanup under way
        await asyncio.wait_for(work.cancelled.wait(), 5)
        serve.cancel()  # the caller cancels serve meanwhile
        await _hops()
        assert not serve.done() and not work.cleaned_up  # still waiting for the cleanup, not cutting it
        work.release.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(serve, 5)
        assert work.cleaned_up and serve.cancelled()

    run(main(), limit=10)


def test_second_cancel_does_not_cut_the_cleanup_and_is_raised() -> None:
    """Old code: the second cancel cut ``work``'s cleanup and serve ended while it was unfinished."""
    async def main() -> None:
        work, stop = _Work(), asyncio.Event()
        serve = asyncio.ensure_future(_unless_stopped(work(), stop))
        await _hops()
        serve.cancel()
        await asyncio.wait_for(work.cancelled.wait(), 5)
        serve.cancel()
        await _hops()
        assert not serve.done() and not work.cleaned_up
        work.release.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(serve, 5)
        assert work.cleaned_up

    run(main(), limit=10)


def test_stop_first_returns_none_after_the_cleanup_and_a_finished_work_its_result() -> None:
    async def main() -> None:
        work, stop = _Work(), asyncio.Event()
        serve = asyncio.ensure_future(_unless_stopped(work(), stop))
        await _hops()
        stop.set()
        await asyncio.wait_for(work.cancelled.wait(), 5)
        work.release.set()
        assert await asyncio.wait_for(serve, 5) is None and work.cleaned_up

        async def quick() -> str:
            return "started"
        assert await _unless_stopped(quick(), asyncio.Event()) == "started"

    run(main(), limit=10)


def test_a_timeout_around_it_is_a_timeout() -> None:
    """``asyncio.timeout`` counts its own cancel (``cancelling``/``uncancel``): it sees it come back."""
    async def main() -> None:
        work, stop = _Work(), asyncio.Event()
        work.release.set()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await _unless_stopped(work(), stop)
        assert work.cleaned_up

    run(main(), limit=10)
