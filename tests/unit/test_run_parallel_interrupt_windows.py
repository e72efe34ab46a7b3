"""``phoneemu run -j``: a Ctrl-C (or SIGTERM) landing outside the parent's loop loses nothing
(:func:`phoneemu.scenario.parallel.run_parallel`, module rules).

Before: Python's handler was in force during the run's set-up (before its ``try``) and after its cleanup
(the summary being made): a KeyboardInterrupt there escaped ``run_scenarios`` with every result (no report)
and, in the set-up, the run's ``phoneemu-run-*`` folder; a first Ctrl-C during the cleanup of a finished
run was dropped (the run said ``OK``, exit 0). As the sequential run (commit ca34b23): held, and taken
where the run can stop.

Deterministic: the signal is sent by the run's own code at one point (a function replaced by one that
calls :func:`signal.raise_signal`, whose handler runs before it returns). The workers are real processes,
forked rather than spawned so that they run a fake ``run_scenario`` (one passing expectation, no lab).
"""

from __future__ import annotations

import multiprocessing
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from phoneemu.scenario import parallel, runner
from phoneemu.scenario.results import RunSummary
from phoneemu.scenario.runner import RunOptions, run_scenarios
from tests.run_helpers import loaded_scenarios, passing_run_scenario, send_once, verdicts
from tests.signal_rules import signals_as_commands_set_them

pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="signal handlers are the main thread's")

NAMES = ["a", "b", "c"]
SIGNALS = pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])


@pytest.fixture(autouse=True)
def signals_as_the_command_sets_them() -> Iterator[None]:
    """SIGINT Python's handler and SIGTERM a Ctrl-C, as ``phoneemu run`` has them; put back after the test."""
    with signals_as_commands_set_them():
        yield


@pytest.fixture(autouse=True)
def forked_fake_workers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Workers forked (they inherit the fake ``run_scenario``: one PASS expectation); the list gets one item
    per worker process started."""
    started: list[int] = []

    def start_processes(procs: Any, real: Callable[[Any], None] = parallel.start_processes) -> None:
        procs = list(procs)
        real(procs)
        started.extend(p.pid for p in procs)

    monkeypatch.setattr(runner, "run_scenario", passing_run_scenario([]))
    forking = SimpleNamespace(get_context=lambda _method: multiprocessing.get_context("fork"))
    monkeypatch.setattr(parallel, "mp", forking)
    monkeypatch.setattr(parallel, "start_processes", start_processes)
    return started


@pytest.fixture
def run_folders(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """The ``phoneemu-run-*`` folders the runs make (one the run left behind is removed after the test)."""
    made: list[Path] = []

    def make_owned_tempdir(prefix: str, real: Callable[[str], str] = parallel.make_owned_tempdir) -> str:
        path = real(prefix)
        made.append(Path(path))
        return path

    monkeypatch.setattr(parallel, "make_owned_tempdir", make_owned_tempdir)
    yield made
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def _sending_after(real: Callable[..., Any], send: Callable[[], None], *,
                   call: int = 1) -> Callable[..., Any]:
    """``real``, that sends the signal (``send``) when its ``call``-th call has returned."""
    calls: list[bool] = []

    def sending(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        calls.append(True)
        if len(calls) == call:
            send()
        return out
    return sending


def _run(tmp_path: Path) -> RunSummary:
    """``run_scenarios`` of a, b, c with ``-j 2``; a KeyboardInterrupt that escapes it fails the test (it is
    what lost every result)."""
    scenarios = loaded_scenarios(tmp_path, NAMES, mac_prefix="0C00000000")
    try:
        return run_scenarios(scenarios, RunOptions(lab_host_base=11), jobs=2)
    except KeyboardInterrupt:
        pytest.fail("the interrupt escaped run_scenarios: every result lost")


@SIGNALS
@pytest.mark.parametrize("where", ["usable_jobs", "make_owned_tempdir"])
def test_a_signal_in_the_set_up_starts_no_worker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 forked_fake_workers: list[int], run_folders: list[Path],
                                                 where: str, sig: signal.Signals) -> None:
    """Before any worker: none started, every scenario not run, the run interrupted, its folder removed."""
    monkeypatch.setattr(parallel, where, _sending_after(getattr(parallel, where), send_once(sig)))
    summary = _run(tmp_path)
    assert forked_fake_workers == []
    assert (summary.interrupted, summary.scenarios, summary.stopped, summary.not_run) == (True, [], [], NAMES)
    assert len(run_folders) == 1 and not run_folders[0].exists()


def test_a_signal_as_the_first_worker_starts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             forked_fake_workers: list[int], run_folders: list[Path]) -> None:
    """As the first worker starts (before the second): it is stopped, nothing handed out, nothing lost."""
    monkeypatch.setattr(parallel, "start_processes", _sending_after(parallel.start_processes,
                                                                    send_once(signal.SIGINT)))
    summary = _run(tmp_path)
    assert len(forked_fake_workers) == 1
    assert (summary.interrupted, summary.scenarios, summary.stopped, summary.not_run) == (True, [], [], NAMES)
    assert len(run_folders) == 1 and not run_folders[0].exists()


@SIGNALS
def test_a_signal_while_the_summary_is_made_keeps_every_verdict(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path, sig: signal.Signals) -> None:
    """After the cleanup (the run's duration measured, its second ``perf_counter``): every verdict kept,
    the run marked interrupted (exit 130), nothing stopped, nothing left."""
    clock = SimpleNamespace(monotonic=time.monotonic, time=time.time,
                            perf_counter=_sending_after(time.perf_counter, send_once(sig), call=2))
    monkeypatch.setattr(parallel, "time", clock)
    summary = _run(tmp_path)
    assert verdicts(summary) == dict.fromkeys(NAMES, "PASS")
    assert (summary.interrupted, summary.stopped, summary.not_run) == (True, [], [])


def test_a_first_signal_in_the_cleanup_of_a_finished_run_is_not_dropped(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, run_folders: list[Path]) -> None:
    """During the cleanup of a run whose scenarios all ended (its folder removed): every verdict kept, the
    run marked interrupted, as a sequential run does after its last scenario. Was: ignored (exit 0)."""
    removing = SimpleNamespace(rmtree=_sending_after(parallel.shutil.rmtree, send_once(signal.SIGINT)))
    monkeypatch.setattr(parallel, "shutil", removing)
    summary = _run(tmp_path)
    assert verdicts(summary) == dict.fromkeys(NAMES, "PASS")
    assert (summary.interrupted, summary.stopped, summary.not_run) == (True, [], [])
    assert len(run_folders) == 1 and not run_folders[0].exists()


@SIGNALS
def test_a_signal_as_run_scenarios_hands_over_to_run_parallel(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path, forked_fake_workers: list[int],
                                                              run_folders: list[Path],
                                                              sig: signal.Signals) -> None:
    """As ``run_scenarios`` calls ``run_parallel``: held, taken after its set-up (no worker started, every
    scenario not run, its folder removed). Was: Python's handler given back around the call, the
    KeyboardInterrupt escaped with no summary (no report)."""
    real = parallel.run_parallel
    send = send_once(sig)

    def run_parallel(*args: Any, **kwargs: Any) -> RunSummary:
        send()
        return real(*args, **kwargs)

    monkeypatch.setattr(parallel, "run_parallel", run_parallel)
    summary = _run(tmp_path)
    assert forked_fake_workers == []
    assert (summary.interrupted, summary.scenarios, summary.stopped, summary.not_run) == (True, [], [], NAMES)
    assert len(run_folders) == 1 and not run_folders[0].exists()


@SIGNALS
def test_a_signal_as_run_parallel_returns_keeps_every_verdict(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path, sig: signal.Signals) -> None:
    """As ``run_parallel`` returns to ``run_scenarios``: every verdict kept, the run marked interrupted
    (exit 130). Was: the KeyboardInterrupt escaped with every result."""
    monkeypatch.setattr(parallel, "run_parallel", _sending_after(parallel.run_parallel, send_once(sig)))
    summary = _run(tmp_path)
    assert verdicts(summary) == dict.fromkeys(NAMES, "PASS")
    assert (summary.interrupted, summary.stopped, summary.not_run) == (True, [], [])
