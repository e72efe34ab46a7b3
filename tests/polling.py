"""Polling a condition in an asyncio test: bounded in count and time (house rule: every loop bounded)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def poll_until(check: Callable[[], bool], what: str, *, within: float, every: float) -> None:
    """Poll ``check()`` every ``every`` seconds until true, at most ``within`` seconds; AssertionError
    naming ``what`` otherwise."""
    for _ in range(int(within / every)):
        if check():
            return
        await asyncio.sleep(every)
    raise AssertionError(f"not within {within}s: {what}")
