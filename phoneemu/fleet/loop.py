"""Which event loop a fleet process runs on (issue #6).

Rule: ``"auto"`` (the default) runs on uvloop when it is installed — a declared dependency on
Linux and macOS: its loop, timers and socket calls are in C, which cuts the per-datagram and
per-connection cost of thousands of concurrent phones — and on the standard asyncio loop
otherwise; ``"asyncio"`` and ``"uvloop"`` force one (``"uvloop"`` without uvloop is an error).
The phones' code is the same on both: only the loop changes.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

from phoneemu.errors import EncodeError
from phoneemu.fleet.loop_names import EVENT_LOOPS, EventLoopName

__all__ = ["EVENT_LOOPS", "EventLoopName", "resolve_event_loop", "run_on"]

T = TypeVar("T")


def resolve_event_loop(name: str) -> Literal["asyncio", "uvloop"]:
    """The loop ``name`` stands for on this machine (EncodeError for an unknown or missing one)."""
    if name not in EVENT_LOOPS:
        raise EncodeError(f"event loop {name!r}: expected one of {', '.join(EVENT_LOOPS)}", path="event_loop")
    have_uvloop = importlib.util.find_spec("uvloop") is not None
    if name == "uvloop" and not have_uvloop:
        raise EncodeError("event loop 'uvloop' asked for but uvloop is not installed", path="event_loop")
    if name == "asyncio" or not have_uvloop:
        return "asyncio"
    return "uvloop"


def run_on(name: str, main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop ``name`` resolves to."""
    if resolve_event_loop(name) == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
