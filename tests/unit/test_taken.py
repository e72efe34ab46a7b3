"""The lab's rule for a client still taking what a server sent it (:mod:`phoneemu.net._taken`), on a
stand-in writer whose unsent bytes the test moves: at least the floor taken within each wait, over the last
wait (a sliding window looked at four times a wait), else the bytes still unsent; None once sent."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from phoneemu.net._taken import CHECKS_PER_WAIT, unsent, until_taken

WAIT = 0.2
FLOOR = 100


class _Transport:
    def __init__(self, unsent: int) -> None:
        self.unsent = unsent

    def get_write_buffer_size(self) -> int:
        return self.unsent


class _Writer:
    """What :func:`until_taken` reads of a ``StreamWriter``: its transport's buffer, no socket."""

    def __init__(self, unsent: int) -> None:
        self.transport = _Transport(unsent)

    def get_extra_info(self, _name: str, default: object = None) -> object:
        return default


async def _client(writer: _Writer, sent: asyncio.Future[None], *, step: int, every: float) -> None:
    """Take ``step`` bytes every ``every`` seconds (none: stopped); ``sent`` done once all is taken."""
    for _ in range(1000):  # bounded: the tests take at most a few hundred steps
        if writer.transport.unsent <= 0:
            sent.set_result(None)
            return
        await asyncio.sleep(every)
        writer.transport.unsent = max(0, writer.transport.unsent - step)


def _run(start: int, *, step: int, every: float) -> tuple[int | None, float]:
    """:func:`until_taken` while a client takes ``step`` bytes every ``every`` s of ``start`` unsent:
    its answer and how long it took."""
    async def main() -> tuple[int | None, float]:
        loop = asyncio.get_running_loop()
        writer = _Writer(start)
        sent: asyncio.Future[None] = loop.create_future()
        client = asyncio.ensure_future(_client(writer, sent, step=step, every=every))
        began = time.monotonic()
        try:
            left = await until_taken(cast(Any, writer), sent, WAIT, floor=FLOOR)
        finally:
            client.cancel()
        return left, time.monotonic() - began
    return asyncio.run(main())


def test_a_client_taking_the_floor_each_wait_in_small_steps_is_served_to_the_end() -> None:
    # 40 bytes every 0.03 s: ~260 bytes a wait, above the floor though no step is; some 2.5 waits in all
    left, _took = _run(800, step=40, every=0.03)
    assert left is None


def test_a_client_that_takes_nothing_is_cut_a_wait_after() -> None:
    left, took = _run(800, step=0, every=0.05)
    assert left == 800
    assert WAIT <= took < 2 * WAIT + 0.5, took  # a bound (the window full after WAIT; load), not a figure


def test_a_client_taking_less_than_the_floor_each_wait_is_cut() -> None:
    left, _took = _run(800, step=10, every=0.05)  # ~40 bytes a wait
    assert left is not None and 0 < left < 800


def test_fewer_bytes_than_the_floor_must_all_be_taken() -> None:
    left, _took = _run(FLOOR // 2, step=0, every=0.05)
    assert left == FLOOR // 2


def test_unsent_without_a_socket_is_the_transports_buffer() -> None:
    assert unsent(cast(Any, _Writer(1234))) == 1234
    assert CHECKS_PER_WAIT == 4  # the module rules' "four times a wait" (1.25 waits to a cut)
