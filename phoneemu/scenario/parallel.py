"""``phoneemu run -j N``: scenarios in N worker processes (the catalogue in CI, in a fraction of the time).

Rules:

* Each worker process runs whole scenarios, one at a time, exactly as a sequential run does
  (:func:`phoneemu.scenario.runner.run_scenario`); results are reported in the order of the
  scenario list, whatever the order they finish in.
* Lab addresses: worker *w* puts its clusters on ``127.0.0.(base + w * width)`` onwards, ``width``
  being the largest number of clusters of a scenario of the run, so that live captures of two
  workers never see each other's traffic (ports are ephemeral anyway). The workers are capped so
  that the last address stays ≤ 127.0.0.40 (the range captures know).
* Ctrl-C: the workers are stopped at once; finished scenarios keep their verdicts, the others are
  listed as not run and the summary is marked interrupted (the command writes its reports, exit 130).
* Workers are ``spawn`` processes fed from one queue; they ignore SIGINT (the parent decides). A
  worker says which scenario it starts; when it dies (killed by a signal, e.g. the OOM killer) the
  scenario it was running is an ERROR at once, naming the worker and the signal, and the other
  workers go on. When every worker is gone with scenarios never started, those are ERRORs too.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import queue
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from phoneemu.scenario.model import Scenario
from phoneemu.scenario.results import RunSummary, ScenarioResult

__all__ = ["LAST_LAB_HOST", "run_parallel", "usable_jobs"]

LAST_LAB_HOST = 40


def usable_jobs(jobs: int, scenarios: list[Scenario], base: int) -> tuple[int, int]:
    """``(workers, width)``: at most ``jobs``, one per scenario, and within 127.0.0.base..40."""
    width = max((len(s.clusters) for s in scenarios), default=1) or 1
    fit = max(1, (LAST_LAB_HOST - base + 1) // width)
    return max(1, min(jobs, len(scenarios), fit)), width


def _worker(base: int, tasks: Any, results: Any, settings: tuple[str | None, str | None, int | None],
            me: int = 0) -> None:
    """Worker process: run the scenarios it is handed until it gets None. ``settings``: capture
    folder, work folder, scenario clock start (as in the sequential run's options)."""
    import asyncio

    from phoneemu.scenario.runner import RunOptions, new_result, run_scenario

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    capture_dir, workdir, start_time = settings
    opts = RunOptions(capture_dir=Path(capture_dir) if capture_dir else None,
                      workdir=Path(workdir) if workdir else None, start_time=start_time, lab_host_base=base)
    while (item := tasks.get()) is not None:
        i, sc = item
        results.put(("start", i, me))
        try:
            result = asyncio.run(run_scenario(sc, opts))
        except BaseException as exc:  # run_scenario reports its own errors; this is the last resort
            result = new_result(sc)
            result.error = f"worker failed: {type(exc).__name__}: {exc}"
        results.put(("result", i, result))


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


@contextlib.contextmanager
def _no_sigint() -> Iterator[None]:
    """SIGINT ignored for a short cleanup (main thread only; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def run_parallel(scenarios: list[Scenario], options: Any, jobs: int) -> RunSummary:
    """Run ``scenarios`` on ``jobs`` worker processes (see module rules); ``options`` is the
    sequential run's :class:`~phoneemu.scenario.runner.RunOptions`."""
    from phoneemu.scenario.runner import new_result

    workers, width = usable_jobs(jobs, scenarios, options.lab_host_base)
    ctx = mp.get_context("spawn")
    tasks, out = ctx.Queue(), ctx.Queue()
    for item in enumerate(scenarios):
        tasks.put(item)
    for _ in range(workers):
        tasks.put(None)
    capture = str(options.capture_dir) if options.capture_dir is not None else None
    workdir = str(options.workdir) if options.workdir is not None else None
    procs = [ctx.Process(target=_worker, name=f"phoneemu-run-{w}", daemon=True,
                         args=(options.lab_host_base + w * width, tasks, out,
                               (capture, workdir, options.start_time), w)) for w in range(workers)]
    summary = RunSummary()
    results: dict[int, ScenarioResult] = {}
    started = time.perf_counter()
    try:
        for p in procs:
            p.start()
        running: dict[int, int] = {}  # worker -> the scenario it said it started
        gone: dict[int, str] = {}  # worker -> how it ended
        while len(results) < len(scenarios):
            try:
                kind, i, value = out.get(timeout=0.2)
            except queue.Empty:
                kind, i, value = "", -1, None
            if kind == "start":
                running[value] = i
            elif kind == "result":
                results[i] = value
                if options.progress is not None:
                    options.progress(f"[{len(results)}/{len(scenarios)}] {scenarios[i].name} "
                                     f"{value.outcome.value} ({workers} workers)")
            if kind:
                continue
            for w, p in enumerate(procs):  # the queue is quiet: look at the workers
                if p.exitcode is None or w in gone:
                    continue
                gone[w] = _exit_text(p)
                j = running.pop(w, None)
                if j is not None and j not in results and p.exitcode != 0:
                    results[j] = new_result(scenarios[j])
                    results[j].error = f"worker process {gone[w]} while running this scenario"
                    if options.progress is not None:
                        options.progress(f"[{len(results)}/{len(scenarios)}] {scenarios[j].name} "
                                         f"ERROR ({gone[w]})")
            if len(gone) == len(procs):  # every worker gone, results missing
                why = "; ".join(gone[w] for w in sorted(gone))
                for j, sc in enumerate(scenarios):
                    if j not in results:
                        results[j] = new_result(sc)
                        results[j].error = f"not run: every worker process ended ({why})"
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        with _no_sigint():  # a second Ctrl-C (or timeout's signal to the group) must not lose the report
            for p in procs:
                if p.is_alive():
                    p.kill()
            for p in procs:
                p.join(5.0)
            for q in (tasks, out):
                q.cancel_join_thread()
                q.close()
    summary.scenarios = [results[i] for i in sorted(results)]
    summary.not_run = [sc.name for i, sc in enumerate(scenarios) if i not in results]
    summary.duration_s = time.perf_counter() - started
    return summary
