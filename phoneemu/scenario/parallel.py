"""``phoneemu run -j N``: scenarios in N worker processes (the catalogue in CI, in a fraction of the time).

Rules:

* Each worker process runs whole scenarios, one at a time, exactly as a sequential run does
  (:func:`phoneemu.scenario.runner.run_scenario`); results are reported in the order of the
  scenario list, whatever the order they finish in.
* Lab addresses: worker *w* puts its clusters on ``127.0.0.(base + w * width)`` onwards, ``width``
  being the largest number of clusters of a scenario of the run, so that live captures of two
  workers never see each other's traffic (ports are ephemeral anyway). The workers are capped so
  that the last address stays ≤ 127.0.0.40 (the range captures know).
* Ctrl-C (or SIGTERM): the workers are stopped at once (SIGKILL); finished scenarios keep their
  verdicts. A scenario under way keeps the expectations its worker had reported (each step start carries
  those evaluated since the last; what is already in the pipe is still read, at most :data:`_DRAIN_S`):
  it is an ERROR ``interrupted (Ctrl-C) before the scenario finished; its last report: in steps[I] (VERB,
  FILE:LINE)`` (``(SIGTERM)`` when the caller noted one: :func:`run_parallel`'s ``sigterm``; the words
  of :func:`phoneemu.scenario.runner.interrupted_error`, ``error_step`` that step), as in a sequential
  run, and listed in ``summary.stopped``; the scenarios never handed out are listed as not run. The
  summary is marked interrupted (the command writes its reports, exit 130). A Ctrl-C is held back for the
  whole of :func:`run_parallel` and taken only where the run can stop: after its set-up (none of the
  workers started, every scenario not run, the run's folder removed), after each worker is started, and
  between two rounds of the parent's loop (held while it reads and records its workers' messages, at most
  the loop's 0.2 s wait): a message read is never half recorded. During the cleanup that follows a
  second Ctrl-C, or a SIGTERM as :func:`phoneemu.interrupts.term_as_ctrl_c` has it, is ignored: the
  summary is returned whole. A first one after the last round (the cleanup, the summary) marks the run
  interrupted, every verdict kept (as a sequential run does after its last scenario). Was: Python's
  handler was in force during the set-up and after the cleanup, and a Ctrl-C there escaped with every
  result (no report) and, in the set-up, the run's folder.
* Workers are ``spawn`` processes; they ignore SIGINT (the parent decides). Each has two pipes of its
  own (:mod:`phoneemu.worker_pipes`), nothing shared with the other workers: the parent hands it one
  scenario at a time over the first when it is idle (it said ``ready``, or sent a result) and reads
  its results from the second, never blocking on one worker. So a worker killed mid-message damages
  only its own pipes, and the parent always knows which scenario each worker runs.
* A worker that dies (killed by a signal, e.g. the OOM killer; any end of its process or its pipe)
  or sends bytes that do not decode (it is killed) makes the scenario it was running an ERROR at
  once, naming the worker, its pid and the signal or exit status (or the damage) and, when it had
  reported one, the step it was in at its last report (``...; its last report: in steps[I] (VERB,
  FILE:LINE)``; the report's ``error_step`` too, ``in set-up (...)`` when it had reported none), with
  the expectations it had reported; the other workers go on. A fresh worker (same lab addresses)
  takes its place when scenarios are left and the dead one had started (said ``ready``): a worker
  that dies before that is not replaced (a worker that cannot start would otherwise be restarted
  for ever). When every worker is gone with scenarios never started, those are ERRORs too.
* Time limit (:mod:`phoneemu.scenario.deadline`): a worker enforces each scenario's limit itself, as a
  sequential run does (cancel at the limit, a signal ``grace`` later) and reports the ERROR naming the
  step. It tells the parent each step it starts, with the expectation results evaluated so far, so the
  parent always knows both. A worker that has not reported ``2 x grace`` after the limit is killed: the
  scenario is an ERROR ``timed out after S s in steps[I] (VERB, FILE:LINE); worker process NAME (pid
  N) had not reported T s after it started the scenario and was killed``, with those expectation
  results, and a fresh worker (same lab addresses) takes its place for the scenarios left.
* A parent killed from outside (SIGKILL, the OOM killer): its workers exit at once, even in the middle
  of a step that would wait for an hour (:func:`phoneemu.worker_pipes.exit_with_parent`), not at the
  scenario's time limit; its ``phoneemu-run-*`` folder is left behind (nobody is left to remove it)
  until the next ``phoneemu run`` or ``boot`` sees its maker gone (:mod:`phoneemu.tempdirs`).
* Temporary files: the workers make theirs (each scenario's lab and flash folders) in one folder the
  parent creates (``phoneemu-run-*``) and removes once every worker has ended, so a worker killed in
  the middle of a scenario leaves nothing behind.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from phoneemu import worker_pipes
from phoneemu.interrupts import asyncio_run, ctrl_c_deferred, release_held_signals, start_processes
from phoneemu.scenario.model import Scenario
from phoneemu.scenario.results import RunSummary, ScenarioResult
from phoneemu.tempdirs import make_owned_tempdir

__all__ = ["LAST_LAB_HOST", "run_parallel", "usable_jobs"]

LAST_LAB_HOST = 40


def usable_jobs(jobs: int, scenarios: list[Scenario], base: int) -> tuple[int, int]:
    """``(workers, width)``: at most ``jobs``, one per scenario, and within 127.0.0.base..40."""
    width = max((len(s.clusters) for s in scenarios), default=1) or 1
    fit = max(1, (LAST_LAB_HOST - base + 1) // width)
    return max(1, min(jobs, len(scenarios), fit)), width


def _worker(base: int, tasks: Any, results: Any,
            settings: tuple[str | None, str | None, int | None, float, float, str | None],
            me: int = 0) -> None:
    """Worker process: say ``ready``, then run each scenario the parent hands it over ``tasks`` (its
    own pipe) and send the result over ``results`` (its own pipe), until it gets None or the parent is
    gone; ``("step", i, text, new expectation results)`` as each step starts. ``settings``: capture
    folder, work folder, scenario clock start, time limit and grace (as in the sequential run's options),
    and the parent's folder for the worker's temporary files (``tempfile.tempdir``)."""
    from phoneemu.scenario.deadline import ScenarioOverrun, StepTracker, hard_stop, limit_for, seconds_text
    from phoneemu.scenario.runner import RunOptions, new_result, run_scenario

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    release_held_signals()  # held while started (start_processes)
    worker_pipes.exit_with_parent()
    capture_dir, workdir, start_time, timeout, grace, tmp_root = settings
    if tmp_root:  # the parent removes it at the end: nothing is left behind by a worker it killed
        tempfile.tempdir = tmp_root
    opts = RunOptions(capture_dir=Path(capture_dir) if capture_dir else None,
                      workdir=Path(workdir) if workdir else None, start_time=start_time, lab_host_base=base,
                      timeout=timeout, grace=grace)
    try:
        worker_pipes.send(results, ("ready", me))
        while (item := worker_pipes.recv(tasks)) is not None:
            i, sc = item

            def tell(text: str, new: list[Any], i: int = i) -> None:
                worker_pipes.send(results, ("step", i, text, new))

            tracker = StepTracker(tell)
            limit = limit_for(sc, timeout)
            result = new_result(sc)
            try:
                with hard_stop(limit + grace if limit > 0 else 0):
                    result = asyncio_run(run_scenario(sc, opts, result, tracker))
            except ScenarioOverrun:  # the signal came while closing: as the sequential run says it
                result.error = (f"timed out after {seconds_text(limit)} s {tracker.text}; interrupted "
                                f"{grace:g} s later (the lab servers may not all be closed)")
            except (EOFError, OSError):  # a step message found the parent gone
                raise
            except BaseException as exc:  # run_scenario reports its own errors; this is the last resort
                result = new_result(sc)
                result.error = f"worker failed: {type(exc).__name__}: {exc}"
            worker_pipes.send(results, ("result", i, result))
    except (EOFError, OSError):  # the parent is gone (or stopped us): nobody to report to
        return


def _exit_text(p: Any) -> str:
    """``phoneemu-run-0 (pid 42) was killed by SIGKILL`` / ``... exited with status 1``."""
    code = p.exitcode
    if code is not None and code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"exited with status {code}"
    return f"{p.name} (pid {p.pid}) {how}"


def run_parallel(scenarios: list[Scenario], options: Any, jobs: int, *, sigterm: Sequence[bool] = (),
                 take_ctrl_c: Callable[[], None] | None = None) -> RunSummary:
    """Run ``scenarios`` on ``jobs`` worker processes (see module rules); ``options`` is the
    sequential run's :class:`~phoneemu.scenario.runner.RunOptions`; ``sigterm`` non-empty once a SIGTERM
    stopped the run (the caller's note: the KeyboardInterrupt it comes out as does not say). A Ctrl-C is
    held back throughout, taken only where the run can stop (module rules): ``take_ctrl_c`` given, the
    caller holds it (``run_scenarios``, from before this call to after it: no moment with Python's handler)
    and that raises the one held; else here. With SIGINT left to the system (SIG_DFL) nothing is held: a
    Ctrl-C ends the process, as it did."""
    if take_ctrl_c is not None:
        return _run_held(scenarios, options, jobs, sigterm, take_ctrl_c)
    if signal.getsignal(signal.SIGINT) == signal.SIG_DFL:
        return _run_held(scenarios, options, jobs, sigterm, _nothing_held)
    with ctrl_c_deferred() as take_held:
        return _run_held(scenarios, options, jobs, sigterm, take_held)


def _nothing_held() -> None:
    """:func:`_run_held`'s ``take_ctrl_c`` when nothing is held."""


def _run_held(scenarios: list[Scenario], options: Any, jobs: int, sigterm: Sequence[bool],
              take_ctrl_c: Callable[[], None]) -> RunSummary:
    """:func:`run_parallel` with a Ctrl-C held back: ``take_ctrl_c()`` raises the one held (as the SIGINT
    handler in force before has it: KeyboardInterrupt) where the run can stop."""
    from phoneemu.scenario.deadline import limit_for, seconds_text
    from phoneemu.scenario.runner import interrupted_error, new_result

    workers, width = usable_jobs(jobs, scenarios, options.lab_host_base)
    ctx = mp.get_context("spawn")
    capture = str(options.capture_dir) if options.capture_dir is not None else None
    workdir = str(options.workdir) if options.workdir is not None else None
    run_tmp: str | None = None  # the workers' temporary files, made in the try below, removed at the end
    procs: list[Any] = []  # worker -> its process (a worker started in place of a killed one: a new index)
    to_workers: list[Any] = []  # worker -> the parent's writing end of its task pipe
    slots: list[int] = []  # worker -> its lab addresses (0 .. workers-1; a replacement keeps its slot)
    inbox = worker_pipes.Inbox({})
    summary = RunSummary()
    results: dict[int, ScenarioResult] = {}
    partial: dict[int, ScenarioResult] = {}  # scenario -> what its worker said so far (step, expectations)
    doing: dict[int, str] = {}  # scenario -> the step under way, as its worker said
    todo = list(range(len(scenarios)))[::-1]  # scenario indexes not handed out yet, next one last
    running: dict[int, int] = {}  # worker -> the scenario it was handed
    since: dict[int, float] = {}  # worker -> when it was handed that scenario (monotonic)
    gone: dict[int, str] = {}  # worker -> how it ended
    came_up: set[int] = set()  # workers that said ``ready``: one of them that dies is replaced
    ended_at: dict[int, float] = {}  # worker -> when its pipe or its process was first seen ended
    started = time.perf_counter()

    def spawn(slot: int) -> None:
        """Start a worker on lab addresses ``slot`` (0 .. workers-1) and read its pipe."""
        w = len(procs)
        tasks_r, tasks_w = ctx.Pipe(duplex=False)  # (worker's reading end, parent's)
        res_r, res_w = ctx.Pipe(duplex=False)  # (parent's reading end, worker's)
        p = ctx.Process(target=_worker, name=f"phoneemu-run-{w}", daemon=True,
                        args=(options.lab_host_base + slot * width, tasks_r, res_w, settings, w))
        slots.append(slot)
        procs.append(p)
        to_workers.append(tasks_w)
        try:
            start_processes([p])  # an interrupt in the start: after it, so the worker is known and killed
        finally:  # the worker holds the only copy of its ends: its exit is the parent's end of file
            worker_pipes.close_after_start([tasks_r, res_w])
        inbox.add(w, res_r)

    def report(j: int, text: str) -> None:
        if options.progress is not None:
            options.progress(f"[{len(results)}/{len(scenarios)}] {scenarios[j].name} {text}")

    def hand_out(w: int) -> None:
        """Worker ``w`` is idle: its next scenario, or None (it exits)."""
        j = todo.pop() if todo else None
        try:
            worker_pipes.send(to_workers[w], None if j is None else (j, scenarios[j]))
        except OSError:  # it is gone: the scenario goes back, its end is noticed below
            if j is not None:
                todo.append(j)
            return
        if j is not None:
            running[w] = j
            since[w] = time.monotonic()
            partial[j] = new_result(scenarios[j])
            partial[j].started_at = time.time()  # the worker starts it now (its own result says it too)

    def end(w: int, how: str, error: str | None = None) -> None:
        """Worker ``w`` is gone (``how``, else its exit status): the scenario it ran is an ERROR
        (``error``, else the worker's end), with the expectation results it had reported."""
        p = procs[w]
        if p.is_alive():
            p.kill()
            p.join(5.0)
        gone[w] = how or _exit_text(p)
        j = running.pop(w, None)
        if j is not None and j not in results:
            results[j] = partial.pop(j) if j in partial else new_result(scenarios[j])
            last = f"; its last report: {doing[j]}" if j in doing else ""
            results[j].error = error or f"worker process {gone[w]} while running this scenario{last}"
            results[j].last_step = doing.get(j, _NOTHING_SAID)
            results[j].duration_s = time.monotonic() - since[w]
            report(j, f"ERROR ({gone[w]})")

    def note(w: int, msg: Any) -> bool:
        """Record a ``step`` or ``result`` message of worker ``w`` about the scenario it runs; True for
        its result (the worker is idle again)."""
        j = running.get(w, -1)
        if msg[0] == "step" and j == msg[1]:
            doing[j] = msg[2]
            partial[j].expectations.extend(msg[3])
        elif msg[0] == "result" and j == msg[1]:
            del running[w]
            partial.pop(j, None)
            results[j] = msg[2]
            report(j, f"{msg[2].outcome.value} ({workers} workers)")
            return True
        return False

    def take(w: int, msg: Any) -> None:
        """One message of worker ``w`` while the run goes on."""
        if isinstance(msg, worker_pipes.Closed):
            if msg.damaged:
                end(w, f"{procs[w].name} (pid {procs[w].pid}) sent a damaged message ({msg.why})")
                replace(w)
        elif msg[0] == "ready":
            came_up.add(w)
            hand_out(w)
        elif note(w, msg):
            hand_out(w)

    def last_words() -> None:
        """Interrupted, every worker stopped: what they had sent before (steps, results) is still read
        and recorded, for at most :data:`_DRAIN_S` (a pipe a process of a worker's own still holds)."""
        deadline = time.monotonic() + _DRAIN_S
        while inbox.open() and time.monotonic() < deadline:
            for w, msg in inbox.wait(0.05):
                if not isinstance(msg, worker_pipes.Closed):
                    note(w, msg)

    def stop_under_way(by: str) -> list[int]:
        """Interrupted by ``by`` (``Ctrl-C``, ``SIGTERM``): each scenario a worker was running is an ERROR
        saying so, with the expectations and the step its worker had reported; their indexes."""
        stopped: list[int] = []
        for w, j in running.items():
            if j in results:
                continue
            results[j] = partial.pop(j) if j in partial else new_result(scenarios[j])
            results[j].last_step = step = doing.get(j, _NOTHING_SAID)
            results[j].error = interrupted_error(by, step)
            results[j].duration_s = time.monotonic() - since[w]
            stopped.append(j)
        return sorted(stopped)

    def replace(w: int) -> None:
        """Worker ``w`` died: a fresh one on its lab addresses, if scenarios are left and it had come up."""
        if todo and w in came_up:
            spawn(slots[w])

    def overdue(now: float) -> None:
        """Kill each worker past its scenario's limit and ``2 x grace``; a fresh worker takes its place."""
        for w, j in list(running.items()):
            limit = limit_for(scenarios[j], options.timeout)
            late = limit + 2 * options.grace
            if limit <= 0 or now - since[w] <= late or w in gone:
                continue
            p = procs[w]
            p.kill()
            p.join(5.0)
            step = doing.get(j, _NOTHING_SAID)
            end(w, f"{p.name} (pid {p.pid}) was killed: past the time limit",
                f"timed out after {seconds_text(limit)} s {step}; worker process {p.name} (pid {p.pid}) "
                f"had not reported {late:g} s after it started the scenario and was killed")
            if todo:
                spawn(slots[w])

    by = "Ctrl-C"  # what stopped the run (interrupted)
    try:
        with ctrl_c_deferred() as interrupted:  # a Ctrl-C (a SIGTERM) as it is made: once the finally owns it
            run_tmp = make_owned_tempdir("phoneemu-run-")
        interrupted()
        settings = (capture, workdir, options.start_time, float(options.timeout), float(options.grace),
                    run_tmp)
        take_ctrl_c()  # one during the set-up: no worker started, every scenario not run
        try:
            for slot in range(workers):
                spawn(slot)
                take_ctrl_c()  # the workers started so far are known: stopped below
        except BaseException:
            for c in to_workers:
                c.close()
            raise
        while len(results) < len(scenarios):
            # a message read is recorded whole (module rules): a Ctrl-C is taken between two rounds
            live = [p.sentinel for w, p in enumerate(procs) if w not in gone and p.exitcode is None]
            for w, msg in inbox.wait(0.2, live):
                take(w, msg)
            now = time.monotonic()
            overdue(now)
            # each worker's own pipe: the others cannot hide its end
            for w in worker_pipes.ended_workers(procs, inbox, skip=gone, ended_at=ended_at, now=now,
                                                grace=_END_GRACE_S):
                p = procs[w]
                end(w, "" if p.exitcode is not None else f"{p.name} (pid {p.pid}) closed its pipe")
                replace(w)
            if len(gone) == len(procs):  # every worker gone, results missing
                why = "; ".join(gone[w] for w in sorted(gone))
                for j, sc in enumerate(scenarios):
                    if j not in results:
                        results[j] = new_result(sc)
                        results[j].error = f"not run: every worker process ended ({why})"
            take_ctrl_c()
    except KeyboardInterrupt:  # a SIGTERM is noted before it comes out as one
        summary.interrupted = True
        by = "SIGTERM" if sigterm else "Ctrl-C"
    finally:  # still held: a second Ctrl-C or SIGTERM (timeout's to the group) must not lose the report
        for p in procs:
            if p.is_alive():
                p.kill()
        for p in procs:
            p.join(5.0)
        if summary.interrupted:
            last_words()
            summary.stopped = [scenarios[j].name for j in stop_under_way(by)]
        inbox.close()
        for c in to_workers:
            c.close()
        if run_tmp is not None:
            shutil.rmtree(run_tmp, ignore_errors=True)
    summary.scenarios = [results[i] for i in sorted(results)]
    summary.not_run = [sc.name for i, sc in enumerate(scenarios) if i not in results]
    summary.duration_s = time.perf_counter() - started
    if not summary.interrupted:
        _ended_interrupted(summary, take_ctrl_c)
    return summary


def _ended_interrupted(summary: RunSummary, take_ctrl_c: Callable[[], None]) -> None:
    """A first Ctrl-C held back after the last round (the cleanup, the summary) marks the finished run
    interrupted, every verdict kept (module rules); one after an interrupt is left unsaid."""
    try:
        take_ctrl_c()
    except KeyboardInterrupt:
        summary.interrupted = True


#: What a scenario was doing when its worker had reported no step of it yet.
_NOTHING_SAID = "in set-up (the worker said nothing yet)"
#: Seconds the parent of an interrupted run still reads what its stopped workers had sent (module rules).
_DRAIN_S = 1.0
#: Seconds between the end of a worker's process and the end of its pipe (either order) before it
#: counts as gone all the same (e.g. a process of its own still holds the pipe).
_END_GRACE_S = 5.0
