"""SIGTERM is a Ctrl-C: one rule for every phoneemu command (ours).

``kill`` and a CI job's time-out send SIGTERM; Python's default for it ends the process at once — no
summary, no report, temporary files (a flash holding a MIC's private key) and child processes left.
:func:`term_as_ctrl_c` makes SIGTERM call the SIGINT handler in force instead: Python's raises
KeyboardInterrupt, asyncio's cancels the main task (so a scenario closes its labs), a command's own
defers it (``fuzz --target-cmd`` while a command starts); with SIGINT ignored (a shell's background job)
or left to the system, KeyboardInterrupt is raised. ``phoneemu.cli.main`` sets it for every command;
``run`` and the fleet's parent set it again around their work (they are also called as functions).
A SIGTERM held back by :func:`ctrl_c_deferred` is delivered after the block by the same rule, as the
Ctrl-C it stands for (was: with SIGINT ignored, dropped as an ignored SIGINT would be).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["ctrl_c_deferred", "release_held_signals", "start_processes", "term_as_ctrl_c"]


def term_as_ctrl_c() -> Any:
    """Set the rule of this module; the old SIGTERM handler (None outside the main thread: signal
    handlers are set there only, and nothing is changed)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_term(_sig: int, frame: Any) -> None:
        handler = signal.getsignal(signal.SIGINT)
        if not callable(handler):
            raise KeyboardInterrupt
        handler(signal.SIGTERM if isinstance(handler, _Held) else signal.SIGINT, frame)

    return signal.signal(signal.SIGTERM, on_term)


class _Held:
    """The SIGINT handler of a :func:`ctrl_c_deferred` block: notes the signals held back (SIGINT; SIGTERM
    when :func:`term_as_ctrl_c`'s handler passes one on)."""

    def __init__(self) -> None:
        self.got: list[int] = []

    def __call__(self, signum: int, _frame: Any) -> None:
        self.got.append(signum)


@contextlib.contextmanager
def ctrl_c_deferred() -> Iterator[Callable[[], None]]:
    """Hold back a SIGINT (or a SIGTERM, which stands for one) during the block (main thread only; elsewhere
    nothing changes); yields what to call after it: the handler the signal would have met
    (KeyboardInterrupt for Python's default). A SIGTERM is delivered as :func:`term_as_ctrl_c` has it:
    with SIGINT ignored or left to the system, KeyboardInterrupt (a SIGINT alone is ignored, or the
    system's)."""
    held = _Held()
    try:
        old = signal.signal(signal.SIGINT, held)
    except ValueError:  # not the main thread: signals are the main thread's
        yield lambda: None
        return

    def deliver() -> None:
        if not held.got:
            return
        term = signal.SIGTERM in held.got
        held.got.clear()
        if callable(old):  # an outer block's _Held keeps a SIGTERM one
            old(signal.SIGTERM if term and isinstance(old, _Held) else signal.SIGINT, None)
        elif term:
            raise KeyboardInterrupt
        elif old == signal.SIG_DFL:
            signal.raise_signal(signal.SIGINT)

    try:
        yield deliver
    except BaseException:
        signal.signal(signal.SIGINT, old)
        deliver()  # a Ctrl-C held back wins over the block's own error
        raise
    signal.signal(signal.SIGINT, old)


HELD_WHILE_STARTING = {signal.SIGINT, signal.SIGTERM}


def start_processes(procs: Iterable[Any]) -> None:
    """Start each ``multiprocessing`` process with a Ctrl-C or SIGTERM held back until all are started,
    then raised here as the SIGINT handler in force has it (KeyboardInterrupt): a signal between spawning
    a child and writing it its process object left that child reading a cut pipe (an ``EOFError``
    traceback from ``multiprocessing.spawn``), unknown to the parent (no pid) and never killed. The
    signals are blocked while the children are spawned, so they start with them blocked (the mask is
    inherited): a Ctrl-C to the whole process group cannot break their start either; each child calls
    :func:`release_held_signals` once it has set its own dispositions (ours)."""
    with ctrl_c_deferred() as interrupted:
        held = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_WHILE_STARTING)
        try:
            for p in procs:  # blocked again each time: starting multiprocessing's resource tracker unblocks
                signal.pthread_sigmask(signal.SIG_BLOCK, HELD_WHILE_STARTING)
                p.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)  # a signal held comes now: deferred
    interrupted()


def release_held_signals() -> None:
    """In a child process started by :func:`start_processes`: SIGINT and SIGTERM unblocked (call it after
    setting the child's own handlers; a signal that came during the start is delivered then)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_WHILE_STARTING)
