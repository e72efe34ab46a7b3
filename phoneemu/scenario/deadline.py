"""The per-scenario wall-clock limit of ``phoneemu run`` (``--timeout S``, a scenario's ``timeout:`` key).

Rules:

* The limit of a scenario is its own ``timeout:`` when the file has one, else the run's ``--timeout``
  (default :data:`DEFAULT_TIMEOUT_S`, 300 s: the catalogue's slowest scenario takes about a second);
  0 means no limit. It counts from the scenario's start (labs started, phones made) to its end.
* At the limit the step under way is cancelled (scenarios run on asyncio: every wait on the network is
  an ``await``); the scenario is an ERROR ``timed out after S s in steps[I] (VERB, FILE:LINE)`` (or
  ``in set-up``), the expectations evaluated before it stay in the reports, its lab servers are closed
  (ports released) and the run goes on with the next scenario.
* Blocking code that cancellation cannot reach (the event loop itself is stuck: a blocking call, a
  deadlock, a busy loop) is stopped ``grace`` seconds later (:data:`GRACE_S`) by a signal (SIGALRM,
  sequential runs and ``-j`` workers, main thread only) raising :class:`ScenarioOverrun` in it: the
  same ERROR, saying so, then the same clean-up and the run goes on.
* Last resort, sequential runs of the command (``RunOptions.on_abandon`` set): a scenario still not
  finished ``2 x grace`` after its limit (code that even the signal cannot interrupt, or a clean-up that
  never ends) ends the run from a watchdog thread (:class:`Watchdog`): it reports the scenario as ERROR
  naming it and its step, the rest as not run, writes the reports, says so on stderr and exits with
  status 1. With ``-j`` the parent kills the worker at that point instead and starts a fresh one
  (:mod:`phoneemu.scenario.parallel`). Code holding the GIL in C forever stops neither thread nor
  signal handler: only ``-j`` (the parent's kill) or a CI timeout ends it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from phoneemu.scenario.bounds import DEFAULT_TIMEOUT_S, GRACE_S
from phoneemu.scenario.model import Expectation, Scenario, Step
from phoneemu.scenario.results import ExpectationResult

__all__ = ["DEFAULT_TIMEOUT_S", "GRACE_S", "ScenarioOverrun", "StepTracker", "Watchdog", "hard_stop",
           "limit_for", "seconds_text"]


def limit_for(scenario: Scenario, run_timeout: float) -> float:
    """The scenario's own ``timeout:`` if it has one, else ``run_timeout``; 0 = no limit."""
    return float(scenario.timeout) if scenario.timeout is not None else run_timeout


def seconds_text(s: float) -> str:
    """``1`` / ``2.5``: a limit as the user wrote it."""
    return f"{s:g}"


class ScenarioOverrun(BaseException):
    """Raised by the SIGALRM handler in code that ran past the limit and its grace (a BaseException:
    an ``except Exception`` in the stuck code must not swallow it)."""


class StepTracker:
    """What a scenario is doing now (``in set-up``, ``in steps[3] (boot, f.yaml:14)``), for the timeout
    message. ``on_change(text, new_results)`` (the ``-j`` worker tells its parent) is called at each
    step with the expectation results evaluated since the previous call."""

    def __init__(self, on_change: Callable[[str, list[ExpectationResult]], None] | None = None) -> None:
        self.text = "in set-up (starting the labs, making the phones)"
        self.on_change = on_change
        self._sent = 0

    def at(self, index: int, item: Step | Expectation, results: list[ExpectationResult]) -> None:
        kind = item.kind if isinstance(item, Step) else "expect"
        self.text = f"in steps[{index}] ({kind}, {item.where})"
        self._tell(results)

    def closing(self, results: list[ExpectationResult]) -> None:
        self.text = "while closing its lab servers"
        self._tell(results)

    def _tell(self, results: list[ExpectationResult]) -> None:
        if self.on_change is not None:
            new, self._sent = results[self._sent:], len(results)
            self.on_change(self.text, list(new))


@contextlib.contextmanager
def hard_stop(after: float) -> Iterator[None]:
    """Raise :class:`ScenarioOverrun` in the main thread ``after`` seconds from now (SIGALRM), unless the
    block ends first; nothing when ``after`` is 0, outside the main thread (signals go there only) or
    when SIGALRM is someone else's already (a handler of its own, or a timer running)."""
    if after <= 0 or threading.current_thread() is not threading.main_thread() \
            or not hasattr(signal, "setitimer") or signal.getsignal(signal.SIGALRM) is not signal.SIG_DFL \
            or signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        yield
        return

    def on_alarm(_sig: int, _frame: Any) -> None:
        raise ScenarioOverrun

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, after)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class Watchdog:
    """A daemon thread that calls ``fire()`` ``after`` seconds from :meth:`start` unless :meth:`stop`
    comes first (``fire`` reports and ends the process: the last resort of a sequential run)."""

    def __init__(self, after: float, fire: Callable[[], None]) -> None:
        self.after = after
        self._fire = fire
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="phoneemu-run-watchdog", daemon=True)

    def start(self) -> Watchdog:
        if self.after > 0:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()

    def _run(self) -> None:
        if not self._done.wait(self.after):
            self._fire()
