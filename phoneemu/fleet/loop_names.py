"""The event loops a fleet may run on, by name, as ``fleet boot --event-loop`` takes them.

Light on purpose: it imports nothing but typing, so that building the command line (every ``phoneemu``
process, ``--help`` included) does not import asyncio to list three names (start-up time, ours). What
each name stands for is :mod:`phoneemu.fleet.loop`'s rule, which re-exports both.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["EVENT_LOOPS", "EventLoopName"]

EventLoopName = Literal["auto", "asyncio", "uvloop"]
EVENT_LOOPS: tuple[EventLoopName, ...] = ("auto", "asyncio", "uvloop")
