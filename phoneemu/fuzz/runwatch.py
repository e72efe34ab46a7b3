"""The call under way of an in-process fuzz target, watched: a hang that never returns is a finding too.

Rules implemented here (ours: the spec is silent on fuzzing):

* An in-process run cannot be bounded safely while the loop goes on (:class:`~phoneemu.fuzz.targets.
  PythonTarget`): a hang that ends is measured; one that never ends (an endless loop) kept the fuzzer
  past ``--time`` for ever and, stopped by Ctrl-C or SIGTERM, was lost with its input. :class:`RunWatch`
  runs the target's calls and knows the one under way (when it began, its CPU time), so that:

  - at Ctrl-C or SIGTERM, the fuzz loop's input under way that is a hang already by the target's rule
    (``is_hang``: CPU past ``--hang-after``, or blocked ten times that) is a hang finding
    (:meth:`RunWatch.cut_hang`), saved with its run index; one that is not is dropped, as before;
  - past the ``--time`` limit, a fuzz input still under way is stopped once it is a hang by that rule:
    SIGALRM raises :class:`RunOverrun` in it. The loop ends there, so no later input runs in a target
    left half-way; the input so stopped is a hang finding;
  - while a finding is minimised (:meth:`RunWatch.stopping_hangs`), an attempt is stopped at once when
    it is a hang by that rule or outlives the minimiser's time: :class:`AttemptStopped` in it, the
    minimiser's predicate takes it as "not the same crash" (for a hang finding, a hang is the same
    hang), and minimising goes on — so its time budget is a real bound, with ``--runs`` alone too
    (was: an attempt looping for ever hung the run, or held it until ``--time`` and ended it). The
    timer is re-armed for it (every :data:`_LOOK_EVERY` s) and, inside :meth:`RunWatch.stop_at`, given
    back with what is left of the ``--time`` limit. A parser is taken to keep no state across calls
    (a fuzz target must not): the next attempt runs in it as it was left;
  - one input run on its own (``--replay``, ``--regenerate``: :func:`run_once`) is stopped as soon as
    it is a hang, so a saved endless loop replays to its hang finding (exit 1) instead of for ever.

* SIGALRM is taken only in the main thread and when nobody holds it already (as
  :func:`phoneemu.scenario.deadline.hard_stop`); elsewhere only the Ctrl-C rule applies. A target that
  bounds its own runs (``bounds_own_runs``: a command killed at its ``--timeout``, or at the minimiser's
  end: :meth:`phoneemu.fuzz.targets.CommandTarget.runs_ending_within`) is not watched. Code holding
  the interpreter in C for ever is stopped by neither: only a kill ends it (a ``--target MODULE:FUNCTION``
  runs in a child process, killed so: :mod:`phoneemu.fuzz.supervise`).
* The handler and the timer are set inside the ``try`` whose ``finally`` takes them back, a Ctrl-C held
  back while they are taken back: an interrupt at any point leaves no handler of ours and no timer
  running (was: one between setting the handler and the ``try`` left both).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from phoneemu.fuzz.targets import AttemptStopped, Outcome, Target
from phoneemu.interrupts import ctrl_c_deferred

__all__ = ["AttemptStopped", "RunOverrun", "RunWatch", "run_once"]

#: seconds between two looks at the call under way once the time limit has passed, or while minimising
_LOOK_EVERY = 0.1


class RunOverrun(BaseException):
    """Raised in an in-process call that is a hang still under way past the run's time limit (a
    BaseException: the target's own ``except Exception`` must not swallow it)."""


class RunWatch:
    """A :class:`~phoneemu.fuzz.targets.Target` that runs ``target`` and watches its calls (module
    docstring)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        bounded = getattr(target, "bounds_own_runs", False)
        self._is_hang: Callable[[float, float], bool] | None = (None if bounded
                                                                 else getattr(target, "is_hang", None))
        self._since: tuple[float, float] | None = None  # the call under way: wall and CPU clocks at its start
        #: wall and CPU seconds of the last call ended by an exception (Ctrl-C, :class:`RunOverrun`)
        self.cut: tuple[float, float] | None = None
        self._overrun_at: float | None = None  # monotonic: stop_at's limit, within its block
        self._stop_by: float | None = None  # monotonic: the minimiser's end, within stopping_hangs

    @property
    def bounds_own_runs(self) -> bool:
        """Whether the target bounds its own runs (a command killed at its ``--timeout``): not watched."""
        return bool(getattr(self.target, "bounds_own_runs", False))

    def run(self, data: bytes) -> Outcome:
        self.cut = None
        started = (time.perf_counter(), time.thread_time())
        try:
            self._since = started  # watched from here: a stop raised inside the try sets ``cut``
            return self.target.run(data)
        except BaseException:
            self._since = None  # no second RunOverrun on the way out
            self.cut = (time.perf_counter() - started[0], time.thread_time() - started[1])
            raise
        finally:
            self._since = None

    def session(self) -> contextlib.AbstractContextManager[None]:
        return self.target.session()

    def close(self) -> None:
        self.target.close()

    def cut_hang(self, how: str) -> Outcome | None:
        """The hang finding of the last call cut short (``how``: what stopped it), when it was a hang by
        the target's rule by then; None otherwise (not watched, not cut, or not yet a hang)."""
        hang_outcome = getattr(self.target, "hang_outcome", None)
        if self.cut is None or self._is_hang is None or hang_outcome is None:
            return None
        elapsed, cpu = self.cut
        if not self._is_hang(elapsed, cpu):
            return None
        outcome = hang_outcome(elapsed, cpu, f"still running, stopped by {how}")
        return outcome if isinstance(outcome, Outcome) else None

    def _hung_now(self) -> bool:
        since, is_hang = self._since, self._is_hang
        if since is None or is_hang is None:
            return False
        return is_hang(time.perf_counter() - since[0], time.thread_time() - since[1])

    def _on_alarm(self, _sig: int, _frame: Any) -> None:
        """SIGALRM's look at the call under way: while minimising, an attempt that is a hang or outlives the
        minimiser's time is stopped (:class:`AttemptStopped`); else, past stop_at's limit, a hang
        (:class:`RunOverrun`)."""
        if self._stop_by is not None:
            if self._since is not None and (self._hung_now() or time.monotonic() >= self._stop_by):
                raise AttemptStopped
            return
        if self._hung_now():
            raise RunOverrun

    def can_stop_attempts(self) -> bool:
        """Whether :meth:`stopping_hangs` entered now would stop an attempt that hangs (what it yields): a
        watched target, SIGALRM ours already (inside :meth:`stop_at`) or free to take."""
        return self._alarm_is_mine() or self._alarm_free()

    def _alarm_is_mine(self) -> bool:
        return bool(signal.getsignal(signal.SIGALRM) == self._on_alarm)

    def _alarm_free(self) -> bool:
        """SIGALRM can be taken (module docstring): a watched target, the main thread, nobody's handler
        or timer."""
        return (self._is_hang is not None and hasattr(signal, "setitimer")
                and threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGALRM) is signal.SIG_DFL
                and signal.getitimer(signal.ITIMER_REAL)[0] <= 0)

    def _take_alarm(self, first: float) -> None:
        """Our handler, and the timer: first look in ``first`` s (at least 1 ms: 0 would disarm it), then
        every :data:`_LOOK_EVERY` s. Call it inside the ``try`` whose ``finally`` calls
        :meth:`_give_back_alarm`."""
        signal.signal(signal.SIGALRM, self._on_alarm)
        signal.setitimer(signal.ITIMER_REAL, max(first, 0.001), _LOOK_EVERY)

    @staticmethod
    def _give_back_alarm() -> None:
        """No timer, SIGALRM as it was (free: :meth:`_alarm_free`); a Ctrl-C meanwhile held back until
        both are done, then raised."""
        with ctrl_c_deferred() as interrupted:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
        interrupted()

    @contextlib.contextmanager
    def stop_at(self, seconds: float | None) -> Iterator[None]:
        """Within the block, from ``seconds`` from now on, raise :class:`RunOverrun` in a call under way
        that is a hang (looked at every :data:`_LOOK_EVERY` s); nothing when ``seconds`` is None, the
        target is not watched, outside the main thread, or SIGALRM is someone else's."""
        if seconds is None or not self._alarm_free():
            yield
            return
        try:
            self._overrun_at = time.monotonic() + seconds
            self._take_alarm(seconds)
            yield
        finally:
            self._give_back_alarm()  # first: the fewest steps with a handler left behind
            self._overrun_at = None

    @contextlib.contextmanager
    def stopping_hangs(self, seconds: float) -> Iterator[bool]:
        """While a finding is minimised within ``seconds``: an attempt (:meth:`run`) that is a hang, or
        still running after ``seconds``, is stopped at once by :class:`AttemptStopped` (module docstring).
        Inside :meth:`stop_at` its timer is re-armed and, after the block, set to what is left of its
        limit; else SIGALRM is taken for the block and given back. Yields whether attempts are watched
        (False: as :meth:`stop_at`'s "nothing")."""
        nested = self._alarm_is_mine()
        if not nested and not self._alarm_free():
            yield False
            return
        try:
            self._stop_by = time.monotonic() + seconds
            self._take_alarm(min(_LOOK_EVERY, seconds))
            yield True
        finally:
            self._stop_by = None
            if nested:
                self._rearm_overrun()
            else:
                self._give_back_alarm()

    def _rearm_overrun(self) -> None:
        """stop_at's timer again, at what is left of its limit (past it: at once, then every
        :data:`_LOOK_EVERY` s)."""
        if self._overrun_at is not None:
            signal.setitimer(signal.ITIMER_REAL, max(self._overrun_at - time.monotonic(), 0.001), _LOOK_EVERY)


def run_once(target: Target, data: bytes) -> Outcome:
    """``target.run(data)`` for one input run on its own (module docstring): an in-process call is
    stopped as soon as it is a hang by the target's rule, and that hang is the outcome."""
    watch = RunWatch(target)
    try:
        with watch.stop_at(0.0):
            return watch.run(data)
    except RunOverrun:
        hang = watch.cut_hang("the one-input run once it was a hang")
        if hang is None:  # not raised but for a hang: cannot happen
            raise
        return hang
