"""Review R3 of :func:`phoneemu.net._taken.until_taken`: giving up on a client (a cut) must leave what it
waited for alone — a close's wait is the writer's own future (asyncio's ``wait_closed`` awaits the
protocol's one ``_closed`` future), and cancelling it made every later ``wait_closed`` of that writer raise
CancelledError (the TLS server's close after the SIP registrar's cut did)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from phoneemu.net._taken import until_taken


class _Transport:
    def get_write_buffer_size(self) -> int:
        return 800  # never taken


class _ClosingWriter:
    """A writer being closed whose client takes nothing: ``wait_closed`` awaits one future, as asyncio's."""

    def __init__(self, closed: asyncio.Future[None]) -> None:
        self.transport = _Transport()
        self.closed = closed

    def get_extra_info(self, _name: str, default: object = None) -> object:
        return default

    async def wait_closed(self) -> None:
        await self.closed


def test_a_cut_leaves_the_writers_close_future_alone() -> None:
    async def main() -> tuple[int | None, bool, bool]:
        writer = _ClosingWriter(asyncio.get_running_loop().create_future())
        left = await until_taken(cast(Any, writer), writer.wait_closed(), 0.2, floor=100)
        await asyncio.sleep(0)  # the given-up wait's cancel delivered
        cancelled = writer.closed.cancelled()
        if not writer.closed.done():
            writer.closed.set_result(None)  # the connection's end
        later = asyncio.ensure_future(writer.wait_closed())  # as the server's own close does after a cut
        await asyncio.wait((later,), timeout=1.0)
        return left, cancelled, later.done() and not later.cancelled()

    left, cancelled, later_ok = asyncio.run(main())
    assert left == 800
    assert not cancelled
    assert later_ok
