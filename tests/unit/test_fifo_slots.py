"""The FIFO slots of the TFTP pool (a socket slot a transfer) and of a fleet shard (a boot turn): one class,
:class:`FifoSlots` (issue #6). Each rule is checked the way each user takes a slot: the pool inlines the
free-slot test and calls ``take(loop)`` only when it fails; a shard awaits ``_Turns.take()``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from types import FrameType

import pytest

from phoneemu import fifo_slots
from phoneemu.fifo_slots import FifoSlots
from phoneemu.fleet import engine
from phoneemu.net.tftp_client import TftpClientPool

Taker = Callable[[FifoSlots], Awaitable[None]]


async def _pool_take(slots: FifoSlots) -> None:
    """As TftpClientPool.get takes a socket slot."""
    if slots.free and not slots.waiting:
        slots.free -= 1
    else:
        await slots.take(asyncio.get_running_loop())


async def _shard_take(slots: FifoSlots) -> None:
    """As run_shard takes a boot turn."""
    await slots.take()


USERS = [pytest.param(FifoSlots, _pool_take, id="tftp-pool"),
         pytest.param(engine._Turns, _shard_take, id="shard")]


def test_the_pool_and_a_shard_share_one_slots_class() -> None:
    assert isinstance(TftpClientPool()._slots, FifoSlots)
    assert issubclass(engine._Turns, FifoSlots)


@pytest.mark.parametrize(("kind", "take"), USERS)
def test_slots_are_served_in_order_and_a_cancelled_waiter_passes_its_turn(
        loop: asyncio.AbstractEventLoop, kind: Callable[[int], FifoSlots], take: Taker) -> None:
    async def main() -> list[str]:
        slots = kind(1)
        order: list[str] = []
        release = asyncio.Event()

        async def holder(name: str) -> None:
            await take(slots)
            try:
                order.append(name)
                if name == "a":
                    await release.wait()
            finally:
                slots.give()

        first = asyncio.ensure_future(holder("a"))
        await asyncio.sleep(0)  # "a" holds the slot until released
        waiting = [asyncio.ensure_future(holder(n)) for n in ("b", "c", "d")]
        await asyncio.sleep(0)  # they wait, in that order
        waiting[0].cancel()  # "b" gives up waiting: "c" is next
        await asyncio.sleep(0)
        release.set()
        await asyncio.wait_for(asyncio.gather(first, *waiting[1:]), 5)
        await asyncio.wait_for(holder("e"), 5)  # free again: taken at once
        return [*order, f"free={slots.free}", f"waiting={len(slots.waiting)}"]

    assert loop.run_until_complete(main()) == ["a", "c", "d", "e", "free=1", "waiting=0"]


@pytest.mark.parametrize(("kind", "take"), USERS)
def test_a_waiter_cancelled_as_it_is_handed_the_slot_gives_it_on(
        loop: asyncio.AbstractEventLoop, kind: Callable[[int], FifoSlots], take: Taker) -> None:
    async def main() -> tuple[bool, int]:
        slots = kind(1)
        await take(slots)  # held by someone
        b = asyncio.ensure_future(take(slots))
        c = asyncio.ensure_future(take(slots))
        await asyncio.sleep(0)  # both wait
        slots.give()  # handed to b ...
        b.cancel()  # ... which is cancelled before it runs: c gets the slot
        await asyncio.wait_for(c, 5)
        return b.cancelled(), slots.free

    assert loop.run_until_complete(main()) == (True, 0)


def test_a_free_slot_is_taken_and_given_by_take_and_give_alone(loop: asyncio.AbstractEventLoop) -> None:
    """The hot path (issue #6): one take/give pair of a free slot runs no other function of the module
    (nor of asyncio.locks) — ``take`` resolves without a waiter's future."""
    seen: list[str] = []

    def prof(frame: FrameType, event: str, _arg: object) -> None:
        if event == "call" and frame.f_code.co_filename in (fifo_slots.__file__, asyncio.locks.__file__):
            seen.append(frame.f_code.co_name)

    async def main() -> int:
        slots = FifoSlots(1)
        sys.setprofile(prof)
        try:
            await slots.take()
            slots.give()
        finally:
            sys.setprofile(None)
        return slots.free

    assert loop.run_until_complete(main()) == 1
    assert seen == ["take", "give"]
