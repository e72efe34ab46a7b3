"""A new fuzz finding, minimised: how (the plan: attempts, seconds, ``minimize_note``), and carried out.

Rules implemented here (ours: the spec is silent on fuzzing):

* The first input of each signature is minimised (same status and signature must reproduce:
  :func:`same_finding`) — a crash with the minimiser's budget (``minimize_attempts``, 5,000, within
  ``minimize_time``, 20 s), a hang with a budget of its own, each attempt that counts costing the hang
  time-out (at most ``hang_minimize_attempts``, 500, within ``hang_minimize_time``, 10 s:
  :func:`minimize_plan`): a command's hang (its runs bounded by itself, ``bounds_own_runs``: killed at its
  ``--timeout``; was: the crash budget, 20 s of 5 s attempts) as an in-process one; the latter only where
  its attempts are stopped, SIGALRM in the main thread, else saved as found, ``minimize_note`` saying why.
* That budget is a real bound: an in-process attempt that hangs or outlives that time is stopped at once
  (SIGALRM, main thread: :meth:`~phoneemu.fuzz.runwatch.RunWatch.stopping_hangs`), a command's attempt
  still running at its end is killed then
  (:meth:`~phoneemu.fuzz.targets.CommandTarget.runs_ending_within`; was: let run up to its ``--timeout``
  more) — either is not the same finding; the budget is capped at what is left of ``time_limit``, so the
  fuzz loop ends at it (none left: saved un-minimised, ``minimize_note`` in info.json says why,
  :func:`minimize_budget`).
* A finding is saved before it is minimised (:func:`new_finding`), so one interrupted while minimising is
  kept — with the smallest input found so far, ``minimize_note`` saying minimising was stopped after how
  many attempts (was: ``null``, the whole input: :func:`minimize_into`). No minimising begins after the
  request to stop: a hang found as Ctrl-C or the ``--time`` limit stopped the run is saved un-minimised,
  ``minimize_note`` says so.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from phoneemu.fuzz.findings import Finding
from phoneemu.fuzz.minimize import MinimizeInterrupted, minimize
from phoneemu.fuzz.mutators import Mutant
from phoneemu.fuzz.runwatch import AttemptStopped, RunWatch
from phoneemu.fuzz.targets import CommandTarget, Outcome, Target

if TYPE_CHECKING:
    from phoneemu.fuzz.engine import FuzzConfig

__all__ = ["minimize_budget", "minimize_into", "minimize_plan", "new_finding", "same_finding"]


def new_finding(config: FuzzConfig, target: Target, mutant: Mutant, *, index: int, outcome: Outcome,
                save: Callable[[Finding], None] | None = None, time_left: float | None = None,
                clock: Callable[[], float] = time.monotonic, stopped_by: str | None = None) -> Finding:
    """A new finding of ``mutant`` (input ``index``), minimised as :func:`minimize_plan` has it (none when
    ``stopped_by`` stopped the run), within ``time_left`` of the run's ``--time``, timed by ``clock``;
    ``save(finding)`` first, before minimising (a Ctrl-C while minimising keeps the finding), and again when
    a Ctrl-C cuts the minimising short (:func:`minimize_into`)."""
    f = Finding(signature=outcome.signature, kind=outcome.status, first_run=index, count=1,
                detail=outcome.detail, ops=mutant.ops, resigned=mutant.resigned, data=mutant.data)
    watch = target if isinstance(target, RunWatch) else RunWatch(target)
    attempts, seconds, f.minimize_note = minimize_plan(config, watch, outcome, time_left, stopped_by)
    if save is not None:
        save(f)
    if seconds > 0:
        minimize_into(f, config, watch, outcome, attempts=attempts, seconds=seconds, clock=clock, save=save)
    return f


def minimize_plan(config: FuzzConfig, watch: RunWatch, outcome: Outcome, time_left: float | None,
                  stopped_by: str | None) -> tuple[int, float, str | None]:
    """How a new finding is minimised (ours): the attempts, the seconds (0: not at all) and info.json's
    ``minimize_note``. A crash with the minimiser's budget; a hang with the hang budget
    (``hang_minimize_attempts`` within ``hang_minimize_time``: each attempt that counts costs the hang
    time-out, a command's ``--timeout`` or ``--hang-after``), in process only where an attempt is stopped
    once it hangs (:meth:`RunWatch.can_stop_attempts`; a target that bounds its own runs needs no stop:
    ``bounds_own_runs``); none found as ``stopped_by`` (Ctrl-C or SIGTERM, the ``--time`` limit) stopped
    the run — no minimising begins after the request to stop; each within what is left of ``--time``
    (:func:`minimize_budget`)."""
    if not config.minimize or not outcome.is_finding:
        return 0, 0.0, None
    if stopped_by is not None:
        return 0, 0.0, f"not minimised: found as {stopped_by} stopped the run"
    attempts, seconds = config.minimize_attempts, config.minimize_time
    if outcome.status == "hang":
        if not watch.bounds_own_runs and not watch.can_stop_attempts():
            return 0, 0.0, ("not minimised: an in-process hang is minimised only where an attempt is stopped "
                            "once it hangs (SIGALRM free, main thread)")
        attempts = min(attempts, config.hang_minimize_attempts)
        seconds = min(seconds, config.hang_minimize_time)
    seconds, note = minimize_budget(config, seconds, time_left)
    return attempts, seconds, note


def minimize_budget(config: FuzzConfig, seconds: float, time_left: float | None) -> tuple[float, str | None]:
    """The seconds a finding may be minimised, and info.json's ``minimize_note`` (ours): its own ``seconds``,
    capped at what is left of ``--time`` so that ``--time`` bounds the run (was: a crash found just before
    it was minimised for up to 20 s more); none left: not minimised."""
    if time_left is None or time_left >= seconds:
        return seconds, None
    limit = f"--time ({config.time_limit:g} s)"
    if time_left <= 0:
        return 0.0, f"not minimised: found with no time left of {limit}"
    return time_left, (f"minimised within the {time_left:.2f} s left of {limit}, not the {seconds:g} s of a "
                       "minimisation")


def minimize_into(f: Finding, config: FuzzConfig, watch: RunWatch, outcome: Outcome, *, attempts: int,
                  seconds: float, clock: Callable[[], float],
                  save: Callable[[Finding], None] | None) -> None:
    """``f.minimized``, within ``attempts`` and ``seconds``, an attempt looping for ever or outliving them
    stopped at once (:func:`_attempts_ending_within`). A Ctrl-C (or SIGTERM) meanwhile is raised on (ours):
    the smallest input found so far kept in ``f.minimized``, ``minimize_note`` saying so (was: ``null``, the
    whole input), ``save(f)`` again."""
    try:
        with _attempts_ending_within(watch, seconds):
            f.minimized = minimize(f.data, same_finding(watch, outcome), records=config.fmt in ("itl", "ctl"),
                                   max_attempts=attempts, time_limit=seconds, clock=clock)
    except KeyboardInterrupt as exc:
        if f.minimized is None:  # cut short (not a Ctrl-C held back until SIGALRM was given back, once done)
            best, done = (exc.best, exc.attempts) if isinstance(exc, MinimizeInterrupted) else (f.data, 0)
            f.minimized = best
            f.minimize_note = (f"minimisation stopped by Ctrl-C or SIGTERM after {done} attempts: "
                               "minimized.bin is the smallest input found so far")
        if save is not None:
            save(f)
        raise


@contextlib.contextmanager
def _attempts_ending_within(watch: RunWatch, seconds: float) -> Iterator[None]:
    """Every attempt of the block stopped once it outlives ``seconds`` (module docstring): in process by
    the watch (SIGALRM, a hang stopped at once too), a command killed by itself."""
    target = watch.target
    ending: contextlib.AbstractContextManager[None] = (
        target.runs_ending_within(seconds) if isinstance(target, CommandTarget) else contextlib.nullcontext())
    with watch.stopping_hangs(seconds), ending:
        yield


def same_finding(watch: RunWatch, outcome: Outcome) -> Callable[[bytes], bool]:
    """The minimiser's predicate for the finding ``outcome``: a candidate run by ``watch`` gives the same
    status and signature. A candidate stopped at once (:meth:`RunWatch.stopping_hangs`: a hang, or past
    the minimiser's time) is not the same crash; for a hang finding it is the same hang when it was one
    by the target's rule (its hang signature compared; ours, :mod:`phoneemu.fuzz.runwatch`)."""

    def same(candidate: bytes) -> bool:
        try:
            o: Outcome | None = watch.run(candidate)
        except AttemptStopped:
            o = watch.cut_hang("the minimiser once it was a hang")
        return o is not None and o.status == outcome.status and o.signature == outcome.signature

    return same
