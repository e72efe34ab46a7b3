"""At most ``n`` holders at once, served in the order they came: the TFTP pool's socket slots and a fleet
shard's boot turns (issue #6).

:class:`asyncio.Semaphore`'s rule without its coroutines on the way in: a free slot is taken by two
attribute reads and a decrement (``free and not waiting``; the TFTP pool inlines that test), a slot given back
goes straight to the first waiter, and a waiter cancelled after it was handed one gives it on, so no slot
is lost to a cancellation and nobody who came later is served first.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib

__all__ = ["FifoSlots"]


class FifoSlots:
    """``n`` slots, :meth:`take` and :meth:`give`: ``free`` counts the slots nobody holds, ``waiting``
    holds the futures of those waiting, first come first."""

    __slots__ = ("free", "waiting")

    def __init__(self, n: int) -> None:
        self.free = n
        self.waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    async def take(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """A slot: at once when one is free and nobody waits before, else when handed one (``loop``: the
        running one, given by a caller that has it at hand). A caller may inline the first test and call
        this only when it fails: a free slot then costs no coroutine."""
        if self.free and not self.waiting:
            self.free -= 1
            return
        fut: asyncio.Future[None] = (loop or asyncio.get_running_loop()).create_future()
        self.waiting.append(fut)
        try:
            await fut
        except BaseException:
            if fut.cancelled():
                with contextlib.suppress(ValueError):  # (give() may have passed over it already)
                    self.waiting.remove(fut)
            else:  # handed a slot as it was cancelled: the next waiter has it
                self.give()
            raise

    def give(self) -> None:
        """Give a slot back: to the first waiter still waiting, else to the free ones."""
        waiting = self.waiting
        while waiting:
            fut = waiting.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self.free += 1
