"""``run -j`` stopped by a signal, in process: the parent words the scenarios under way with the signal that
stopped it (``interrupted (SIGTERM) ...``, no rewrite of a Ctrl-C's text afterwards), and a second signal
during its cleanup (a SIGTERM: ``kill`` again, a CI job's time-out sent to the whole group) loses nothing.

Real worker processes with the real protocol; only the work is faked inside the worker (``run_scenario``
replaced before the real ``_worker`` runs): the scenario ``stops`` evaluates one expectation, reports its
second step, then sends the parent the signal and waits to be killed; ``waits`` only waits.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phoneemu.scenario import parallel
from phoneemu.scenario.loader import load_text
from phoneemu.scenario.model import Scenario
from phoneemu.scenario.results import RunSummary
from phoneemu.scenario.runner import RunOptions, run_scenarios
from tests.signal_rules import signals_as_commands_set_them

pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="signal handlers are the main thread's")

SCENARIO = """\
reproduces: spec G.2
phones:
  p: {mac: 0A0000000001}
steps:
  - boot: p
  - expect: {phones: p, label: kept, config: accepted}
  - boot: p
"""
#: where ``stops`` says it is when the signal goes
STEP = "in steps[2] (boot, {path}:7)"


def _signalling_worker(base: int, tasks: Any, results: Any, settings: Any, me: int = 0) -> None:
    """Runs in the worker process: the real ``_worker`` with a ``run_scenario`` that reports an evaluated
    expectation and steps[2], then (``stops-SIGNAL``) sends SIGNAL to the parent, and waits."""
    from phoneemu.scenario import runner
    from phoneemu.scenario.results import ExpectationResult

    async def run_scenario(sc: Scenario, opts: RunOptions, result: Any = None, tracker: Any = None) -> Any:
        res = result if result is not None else runner.new_result(sc)
        res.expectations.append(ExpectationResult(where=sc.steps[1].where, label="kept", xfail=None))
        tracker.at(2, sc.steps[2], res.expectations)
        if sc.name.startswith("stops-"):
            os.kill(os.getppid(), signal.Signals[sc.name.removeprefix("stops-")])
        for _ in range(600):  # killed by the parent long before
            time.sleep(0.1)
        return res

    runner.run_scenario = run_scenario  # type: ignore[assignment]
    parallel._worker(base, tasks, results, settings, me)


@pytest.fixture
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGINT Python's handler and SIGTERM a Ctrl-C, as ``phoneemu run`` has them; put back after the test."""
    with signals_as_commands_set_them():
        yield


def _run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, by: str) -> tuple[RunSummary, str]:
    monkeypatch.setattr(parallel, "_worker", _signalling_worker)
    names = [f"stops-{by}", "waits"]
    scenarios = [load_text(SCENARIO, str(tmp_path / f"{n}.yaml")) for n in names]
    assert [s.name for s in scenarios] == names
    summary = run_scenarios(scenarios, RunOptions(lab_host_base=11), jobs=2)
    return summary, STEP.format(path=tmp_path / f"stops-{by}.yaml")


@pytest.mark.usefixtures("sigterm_as_ctrl_c")
@pytest.mark.parametrize(("sig", "by"), [("SIGINT", "Ctrl-C"), ("SIGTERM", "SIGTERM")])
def test_the_parent_words_the_scenario_under_way_with_its_signal(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sig: str, by: str) -> None:
    """``interrupted (BY) before the scenario finished; its last report: in steps[2] (...)``, the
    expectation it had reported kept, the run marked interrupted."""
    summary, step = _run(monkeypatch, tmp_path, sig)
    got = {s.name: s for s in summary.scenarios}
    stops = got[f"stops-{sig}"]
    assert summary.interrupted and f"stops-{sig}" in summary.stopped, summary
    assert stops.error == f"interrupted ({by}) before the scenario finished; its last report: {step}", stops
    assert stops.last_step == step and [e.label for e in stops.expectations] == ["kept"]
    assert set(summary.stopped) | set(summary.not_run) == {f"stops-{sig}", "waits"}


@pytest.mark.usefixtures("sigterm_as_ctrl_c")
@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_second_signal_during_the_cleanup_loses_nothing(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, second: signal.Signals) -> None:
    """A Ctrl-C, then ``second`` while the parent cleans up (it removes the workers' folder): the run's
    summary still comes back. Before: a SIGTERM there met SIGINT ignored, which
    :func:`~phoneemu.interrupts.term_as_ctrl_c` makes a KeyboardInterrupt: it escaped the cleanup and
    every verdict was lost."""
    seen: list[str] = []

    def rmtree(path: str, ignore_errors: bool = False) -> None:
        seen.append(path)
        os.kill(os.getpid(), second)
        for _ in range(1000):  # the handler runs between two bytecodes of the main thread
            pass
        shutil.rmtree(path, ignore_errors=ignore_errors)

    monkeypatch.setattr(parallel, "shutil", types.SimpleNamespace(rmtree=rmtree))
    try:
        summary, step = _run(monkeypatch, tmp_path, "SIGINT")
    except KeyboardInterrupt:
        pytest.fail(f"{second.name} during the cleanup escaped as a KeyboardInterrupt: the summary is lost")
    assert seen and summary.interrupted, summary
    stops = next(s for s in summary.scenarios if s.name == "stops-SIGINT")
    assert stops.error == f"interrupted (Ctrl-C) before the scenario finished; its last report: {step}"
