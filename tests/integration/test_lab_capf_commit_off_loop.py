"""The CAPF group commit does not hold the event loop (:mod:`phoneemu.lab.capf_service`, "Group commit").

Rule: the record of a group of CAPF outcomes (the lab's state saved: files written, renamed, fsynced) runs
in a thread, the event loop serving meanwhile; the phone is still told its outcome only once it is saved.
Was: on the loop — a 300-phone storm kept ``lab serve`` from answering HTTP for up to seconds (phones fell
back to TFTP after their 2 s timeout)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from phoneemu.lab.capf_service import CapfHandler, _Record
from tests.helpers import run


class _SlowSave:
    """What :class:`CapfHandler` commits through, whose save waits for the event loop to run a callback
    (a bounded wait: on the loop's own thread that cannot happen, and the save says so)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.loop_ran = threading.Event()
        self.served_while_saving: bool | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def update_locked(self, change: Callable[[], Any], *, wait: bool = True) -> Any:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.loop_ran.set)
        self.served_while_saving = self.loop_ran.wait(3.0)
        return change()

    @contextlib.contextmanager
    def saved_once(self) -> Iterator[None]:
        yield


def test_the_commit_runs_off_the_event_loop_and_the_phone_is_told_after_it(tmp_path: Path) -> None:
    lab = _SlowSave(tmp_path)
    handler = CapfHandler(lab)  # type: ignore[arg-type]
    made: list[str] = []

    async def main() -> None:
        lab.loop = asyncio.get_running_loop()
        await handler._record(_Record(lambda: made.append("recorded"), "record the CAPF installed of SEP1"))

    run(main(), limit=30)
    assert made == ["recorded"]  # told (the future resolved) only once the change was made
    assert lab.served_while_saving is True  # was False: the loop waited for the save
    assert handler.commits == 1
