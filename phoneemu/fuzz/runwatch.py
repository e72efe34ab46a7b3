"""The call under way of an in-process fuzz target, watched: a hang that never returns is a finding too.

Rules implemented here (ours: the spec is silent on fuzzing):

* An in-process run cannot be bounded safely while the loop goes on (:class:`~phoneemu.fuzz.targets.
  PythonTarget`): a hang that ends is measured; one that never ends (an endless loop) kept the fuzzer
  past ``--time`` for ever and, stopped by Ctrl-C or SIGTERM, was lost with its input. :class:`RunWatch`
  runs the target's calls and knows the one under way (when it began, its CPU time), so that:

  - at Ctrl-C or SIGTERM, the fuzz loop's input under way that is a hang already by the target's rule
    (``is_hang``: CPU past ``--hang-after``, or blocked ten times that) is a hang finding
    (:meth:`RunWatch.cut_hang`), saved with its run index; one that is not is dropped, as before;
  - past the ``--time`` limit, a call still under way (a fuzz input, or an attempt of the minimiser)
    is stopped once it is a hang by that rule: SIGALRM raises :class:`RunOverrun` in it. The loop ends
    there, so no later input runs in a target left half-way; a fuzz input so stopped is a hang finding,
    a finding being minimised is kept un-minimised;
  - one input run on its own (``--replay``, ``--regenerate``: :func:`run_once`) is stopped as soon as
    it is a hang, so a saved endless loop replays to its hang finding (exit 1) instead of for ever.

* SIGALRM is taken only in the main thread and when nobody holds it already (as
  :func:`phoneemu.scenario.deadline.hard_stop`); elsewhere only the Ctrl-C rule applies. A target with
  bounded runs (``minimize_hangs``: a command killed at its ``--timeout``) is not watched. Code holding
  the interpreter in C for ever is stopped by neither: only a kill ends it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from phoneemu.fuzz.targets import Outcome, Target

__all__ = ["RunOverrun", "RunWatch", "run_once"]

#: seconds between two looks at the call under way once the time limit has passed
_LOOK_EVERY = 0.1


class RunOverrun(BaseException):
    """Raised in an in-process call that is a hang still under way past the run's time limit (a
    BaseException: the target's own ``except Exception`` must not swallow it)."""


class RunWatch:
    """A :class:`~phoneemu.fuzz.targets.Target` that runs ``target`` and watches its calls (module
    docstring)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        bounded = getattr(target, "minimize_hangs", False)
        self._is_hang: Callable[[float, float], bool] | None = (None if bounded
                                                                 else getattr(target, "is_hang", None))
        self._since: tuple[float, float] | None = None  # the call under way: wall and CPU clocks at its start
        #: wall and CPU seconds of the last call ended by an exception (Ctrl-C, :class:`RunOverrun`)
        self.cut: tuple[float, float] | None = None

    @property
    def minimize_hangs(self) -> bool:
        return bool(getattr(self.target, "minimize_hangs", False))

    def run(self, data: bytes) -> Outcome:
        started = self._since = (time.perf_counter(), time.thread_time())
        self.cut = None
        try:
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

    @contextlib.contextmanager
    def stop_at(self, seconds: float | None) -> Iterator[None]:
        """Within the block, from ``seconds`` from now on, raise :class:`RunOverrun` in a call under way
        that is a hang (looked at every :data:`_LOOK_EVERY` s); nothing when ``seconds`` is None, the
        target is not watched, outside the main thread, or SIGALRM is someone else's."""
        if seconds is None or self._is_hang is None or not hasattr(signal, "setitimer") \
                or threading.current_thread() is not threading.main_thread() \
                or signal.getsignal(signal.SIGALRM) is not signal.SIG_DFL \
                or signal.getitimer(signal.ITIMER_REAL)[0] > 0:
            yield
            return

        def on_alarm(_sig: int, _frame: Any) -> None:
            if self._hung_now():
                raise RunOverrun

        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001), _LOOK_EVERY)  # 0 would disarm it
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


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
