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
:func:`asyncio_run` is ``asyncio.run`` with its Ctrl-C rule whole at every moment of the run, a SIGTERM with
SIGINT ignored included.

A command may give SIGTERM (and SIGHUP) a status of its own (``lab serve``: 0 after SIGTERM, 129 after
SIGHUP; ``run``: 130 with its reports written). ``phoneemu.cli.main`` holds both back (blocked) from its
first line, :func:`hold_from_start`, while it imports its commands and parses, and lets them through
(:func:`release_from_start`) once the command's own handling is in place: before calling a command's handler,
or, for a handler marked :func:`releases_from_start`, when that handler calls it (a signal that came meanwhile
is delivered then, to the command's handler). Was: a SIGTERM in the CLI's first 0.05-0.15 s was
``phoneemu: interrupted``, exit 130, whatever the command. A signal ignored (SIGHUP under ``nohup``) is not
held: it stays ignored.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # asyncio is imported where a run needs it (the CLI's start-up)
    import asyncio

__all__ = ["asyncio_run", "ctrl_c_deferred", "hold_from_start", "release_from_start", "release_held_signals",
           "releases_from_start", "releases_itself", "sigterm_noted", "start_processes", "term_as_ctrl_c"]

_T = TypeVar("_T")
_Handler = TypeVar("_Handler", bound=Callable[..., Any])

#: the signals :func:`hold_from_start` holds back: those a command may give a status of its own
HELD_FROM_START = (signal.SIGTERM, signal.SIGHUP)
_held_from_start: set[int] = set()  # blocked by hold_from_start, not yet released
_RELEASES_ITSELF = "_phoneemu_releases_from_start"


def hold_from_start() -> None:
    """``phoneemu.cli.main``'s first line: SIGTERM and SIGHUP blocked until :func:`release_from_start` (module
    docstring), each unless ignored (``nohup``: it stays so, nothing held) or blocked already (it stays so
    after). Main thread only (signals are the main thread's); one system call, nothing imported."""
    if threading.current_thread() is not threading.main_thread():
        return
    wanted = {sig for sig in HELD_FROM_START if signal.getsignal(sig) != signal.SIG_IGN}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    _held_from_start.update(wanted - set(before))


def release_from_start() -> None:
    """The command's own handling of SIGTERM and SIGHUP is in place: what :func:`hold_from_start` blocked is
    unblocked, and a signal that came meanwhile is delivered now, to the handler in force (its exception,
    a KeyboardInterrupt, raised here). Nothing when nothing is held (a command called as a function, or a
    second call)."""
    if not _held_from_start or threading.current_thread() is not threading.main_thread():
        return
    held = set(_held_from_start)
    _held_from_start.clear()  # first: a handler raising below leaves nothing held
    signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


def releases_from_start(handler: _Handler) -> _Handler:
    """Mark a command's handler that calls :func:`release_from_start` itself, once its own handling of
    SIGTERM (and SIGHUP) is in place: ``phoneemu.cli.main`` calls it with them still held."""
    setattr(handler, _RELEASES_ITSELF, True)
    return handler


def releases_itself(handler: Any) -> bool:
    """Whether ``handler`` was marked by :func:`releases_from_start`."""
    return getattr(handler, _RELEASES_ITSELF, False) is True


def term_as_ctrl_c() -> Any:
    """Set the rule of this module; the old SIGTERM handler (None outside the main thread: signal
    handlers are set there only, and nothing is changed)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _on_term)


def _on_term(_sig: int, frame: Any) -> None:
    """The SIGTERM handler of :func:`term_as_ctrl_c`."""
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler):
        raise KeyboardInterrupt
    handler(signal.SIGTERM if isinstance(handler, _Held) else signal.SIGINT, frame)


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


@contextlib.contextmanager
def sigterm_noted() -> Iterator[list[bool]]:
    """Note a SIGTERM during the block (the list gets True), then pass it on to the handler in force
    (:func:`term_as_ctrl_c`'s makes it a Ctrl-C, which cannot tell them apart): a report can then name
    the signal. Main thread only, and only over a handler (SIGTERM's default ends the process: nothing is
    left to say)."""
    noted: list[bool] = []
    old = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    if not callable(old):
        yield noted
        return
    passed_on = old

    def on_term(signum: int, frame: Any) -> None:
        noted.append(True)
        passed_on(signum, frame)

    signal.signal(signal.SIGTERM, on_term)
    try:
        yield noted
    finally:
        signal.signal(signal.SIGTERM, old)


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


def asyncio_run(main: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run(main)`` with asyncio's Ctrl-C rule (a SIGTERM is one, :func:`term_as_ctrl_c`) kept at
    every moment: the first cancels the main task, so its clean-up runs, and the run raises
    KeyboardInterrupt; another while it ends raises at once. Three ways it was lost:

    * asyncio.run sets that handler, then zeroes its count of Ctrl-Cs (CPython 3.11 ``asyncio.Runner.run``):
      one in between cancelled the task uncounted and CancelledError escaped — a traceback, exit 1;
    * it gives the handler back before closing the loop: one then raised KeyboardInterrupt inside
      asyncio's own code ("Event loop stopped before Future completed", exit 1);
    * with SIGINT ignored (a shell's background job) asyncio sets no handler, and a SIGTERM raised
      KeyboardInterrupt wherever it landed: a task left never to be stepped again, the loop's close
      waited for it for good (``boot`` hung).

    Here the handler is ours (:class:`_MainTaskStop`), on the signal that stops the run
    (:func:`_stopping_signal`), from before the loop is made until it is closed; asyncio, finding SIGINT
    taken or not Python's, sets none. A Ctrl-C that comes once the task has ended is noted and raised when
    the loop is closed; it wins over the run's result or error, as :func:`ctrl_c_deferred` has it. Without
    such a signal (not the main thread, SIGINT a handler of someone else's), or with a loop running in this
    thread, this is ``asyncio.run``: under a running loop its RuntimeError, nothing changed (was: a second
    loop made, the thread's current loop unset, that loop left unclosed and another RuntimeError)."""
    import asyncio

    signum = _stopping_signal()
    if signum is None or _loop_running():
        return asyncio.run(main)
    stop = _MainTaskStop()
    old = signal.signal(signum, stop)
    try:
        result = _run_stoppable(main, stop)
    except BaseException as exc:
        if stop.count and not isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt from None  # cancelled by the Ctrl-C, or it came as the run failed
        raise
    finally:
        if signal.getsignal(signum) is stop:
            signal.signal(signum, old)
    if stop.count:  # it came after the task ended
        raise KeyboardInterrupt
    return result


def _stopping_signal() -> int | None:
    """The signal :func:`asyncio_run` takes over for its run: SIGINT while Python's default handler has it
    (a SIGTERM reaches it through :func:`term_as_ctrl_c`); SIGTERM while :func:`term_as_ctrl_c` has it and
    SIGINT is ignored or the system's (a Ctrl-C stays as it was); None otherwise."""
    if threading.current_thread() is not threading.main_thread():
        return None
    ctrl_c = signal.getsignal(signal.SIGINT)
    if ctrl_c is signal.default_int_handler:
        return signal.SIGINT
    if not callable(ctrl_c) and signal.getsignal(signal.SIGTERM) is _on_term:
        return signal.SIGTERM
    return None


def _loop_running() -> bool:
    """Whether an event loop runs in this thread (``asyncio.run`` refuses to start one then)."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _MainTaskStop:
    """:func:`asyncio_run`'s handler: the first Ctrl-C cancels the main task (before it is made, or once
    it has ended: only noted), a second raises KeyboardInterrupt at once (a clean-up that does not end)."""

    def __init__(self) -> None:
        self.count = 0
        self.task: asyncio.Task[Any] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def __call__(self, _signum: int, _frame: Any) -> None:
        self.count += 1  # counted before the task is cancelled: no moment where one is not
        if self.count > 1:
            raise KeyboardInterrupt
        self.cancel_task()

    def cancel_task(self) -> None:
        """Cancel the main task if it is under way, waking its loop out of a long select()."""
        if self.task is not None and self.loop is not None and not self.task.done():
            self.task.cancel()
            self.loop.call_soon_threadsafe(lambda: None)


def _run_stoppable(main: Coroutine[Any, Any, _T], stop: _MainTaskStop) -> _T:
    """``main`` as the main task of a new loop, closed after; ``stop`` cancels it (CancelledError)."""
    import asyncio

    try:
        with asyncio.Runner() as runner:
            stop.loop = runner.get_loop()
            task = stop.loop.create_task(main)
            stop.task = task
            if stop.count:  # a Ctrl-C before the task was there to cancel
                stop.cancel_task()
            return stop.loop.run_until_complete(task)
    finally:
        if stop.task is None:  # interrupted before the task was made: the coroutine never runs
            main.close()
