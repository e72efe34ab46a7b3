"""``phoneemu run`` without ``-j``: a Ctrl-C (or SIGTERM) landing outside a scenario loses nothing.

Before: only the scenario itself was inside the ``try`` that turns a KeyboardInterrupt into "this scenario
interrupted, the rest not run"; one raised in the bookkeeping between two scenarios (the progress line, a
new result, the watchdog started or stopped), after the last one, or after the run before its reports were
written escaped: the command said ``interrupted`` and wrote no report, every finished scenario lost.

Deterministic: the signal is sent by the run's own code at one bookkeeping point (a function replaced by
one that calls :func:`signal.raise_signal`, whose handler runs before it returns); the scenarios themselves
are a fake ``run_scenario`` that evaluates one passing expectation, no lab.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phoneemu import cli
from phoneemu.scenario import deadline, reports, runner
from phoneemu.scenario.model import Scenario
from phoneemu.scenario.results import ExpectationResult, RunSummary, ScenarioResult
from phoneemu.scenario.runner import RunOptions, run_scenarios
from tests.run_helpers import (
    EXPECT_LINE,
    loaded_scenarios,
    passing_run_scenario,
    send_once,
    verdicts,
    written_scenarios,
)
from tests.signal_rules import signals_as_commands_set_them

pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="signal handlers are the main thread's")

NAMES = ["a", "b", "c"]
MAC_PREFIX = "0C00000000"
SET_UP = "in set-up (starting the labs, making the phones)"


@pytest.fixture(autouse=True)
def signals_as_the_command_sets_them() -> Iterator[None]:
    """SIGINT Python's handler and SIGTERM a Ctrl-C, as ``phoneemu run`` has them; put back after the test."""
    with signals_as_commands_set_them():
        yield


@pytest.fixture(autouse=True)
def fake_scenarios(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``run_scenario`` replaced: it evaluates one expectation (PASS) and notes the scenario's name."""
    ran: list[str] = []
    monkeypatch.setattr(runner, "run_scenario", passing_run_scenario(ran))
    return ran


def _run(tmp_path: Path, **options: Any) -> RunSummary:
    """``run_scenarios`` of a, b, c without ``-j``; a KeyboardInterrupt that escapes it fails the test (it
    is what lost every result)."""
    try:
        return run_scenarios(loaded_scenarios(tmp_path, NAMES, mac_prefix=MAC_PREFIX),
                             RunOptions(lab_host_base=11, **options))
    except KeyboardInterrupt:
        pytest.fail("the interrupt escaped run_scenarios: every finished scenario's result lost")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_on_the_progress_line_of_the_next_scenario(tmp_path: Path, fake_scenarios: list[str],
                                                            sig: signal.Signals) -> None:
    """Between a and b (b's progress line): a kept (PASS), b and c not run, nothing stopped under way."""
    send = send_once(sig)

    def progress(text: str) -> None:
        if text.startswith("[2/3]"):
            send()

    summary = _run(tmp_path, progress=progress)
    assert fake_scenarios == ["a"]
    assert verdicts(summary) == {"a": "PASS"}
    assert (summary.interrupted, summary.stopped, summary.not_run) == (True, [], ["b", "c"])


@pytest.mark.parametrize("where", ["new_result", "StepTracker", "limit_for"])
def test_a_signal_while_the_next_scenario_is_prepared(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      fake_scenarios: list[str], where: str) -> None:
    """Between a and b (b's result, step tracker or time limit made): the same, a kept, b and c not run."""
    send = send_once(signal.SIGINT)
    real = getattr(runner, where)
    calls: list[object] = []

    def sending(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == 2:  # b's
            send()
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, where, sending)
    summary = _run(tmp_path)
    assert fake_scenarios == ["a"]
    assert verdicts(summary) == {"a": "PASS"}
    assert (summary.interrupted, summary.stopped, summary.not_run) == (True, [], ["b", "c"])


def _watchdog_sending(monkeypatch: pytest.MonkeyPatch, method: str, call: int, sig: signal.Signals) -> None:
    """The run's watchdog whose ``method`` (start, stop) sends ``sig`` at its ``call``-th call."""
    send = send_once(sig)
    calls: list[int] = []

    class Watchdog(deadline.Watchdog):
        def start(self) -> deadline.Watchdog:
            if method == "start":
                calls.append(1)
                if len(calls) == call:
                    send()
            return super().start()

        def stop(self) -> None:
            super().stop()
            if method == "stop":
                calls.append(1)
                if len(calls) == call:
                    send()

    monkeypatch.setattr(runner, "Watchdog", Watchdog)


@pytest.mark.parametrize(("sig", "by"), [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")])
def test_a_signal_as_the_watchdog_starts_stops_that_scenario(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                             fake_scenarios: list[str], sig: signal.Signals,
                                                             by: str) -> None:
    """As b's watchdog starts (b's result is in the run): b is stopped under way before its set-up, an
    ERROR naming the signal as any scenario interrupted says it; a kept, c not run."""
    _watchdog_sending(monkeypatch, "start", 2, sig)
    summary = _run(tmp_path)
    assert fake_scenarios == ["a"]
    assert verdicts(summary) == {"a": "PASS", "b": "ERROR"}
    assert (summary.interrupted, summary.stopped, summary.not_run) == (True, ["b"], ["c"])
    b = summary.scenarios[1]
    assert b.error == runner.interrupted_error(by, SET_UP) and b.last_step == SET_UP


def test_a_signal_as_a_finished_scenario_s_watchdog_stops(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          fake_scenarios: list[str]) -> None:
    """After a (its watchdog stopped): a kept, b and c not run."""
    _watchdog_sending(monkeypatch, "stop", 1, signal.SIGTERM)
    summary = _run(tmp_path)
    assert fake_scenarios == ["a"]
    assert verdicts(summary) == {"a": "PASS"}
    assert (summary.interrupted, summary.stopped, summary.not_run) == (True, [], ["b", "c"])


def test_a_signal_after_the_last_scenario_marks_the_run_interrupted(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path,
                                                                     fake_scenarios: list[str]) -> None:
    """After c, the last (its watchdog stopped): every scenario kept, nothing stopped or left, the run
    marked interrupted (the command exits 130)."""
    _watchdog_sending(monkeypatch, "stop", 3, signal.SIGINT)
    summary = _run(tmp_path)
    assert fake_scenarios == NAMES
    assert verdicts(summary) == {"a": "PASS", "b": "PASS", "c": "PASS"}
    assert (summary.interrupted, summary.stopped, summary.not_run) == (True, [], [])


def test_a_signal_that_stops_a_scenario_still_stops_it(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    """Inside a scenario the signal is Python's (asyncio's) as before: b under way is an ERROR naming its
    step, its expectation kept; a kept, c not run."""
    ran: list[str] = []

    async def run_scenario(sc: Scenario, options: RunOptions, result: ScenarioResult | None = None,
                           tracker: Any = None) -> ScenarioResult:
        assert result is not None and tracker is not None
        ran.append(sc.name)
        result.expectations.append(ExpectationResult(where=sc.steps[1].where, label="ran", xfail=None))
        tracker.at(1, sc.steps[1], result.expectations)
        if sc.name == "b":
            assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler  # asyncio's
            signal.raise_signal(signal.SIGINT)
        return result

    monkeypatch.setattr(runner, "run_scenario", run_scenario)
    summary = _run(tmp_path)
    assert ran == ["a", "b"]
    assert verdicts(summary) == {"a": "PASS", "b": "ERROR"}
    assert (summary.interrupted, summary.stopped, summary.not_run) == (True, ["b"], ["c"])
    b = summary.scenarios[1]
    assert [e.label for e in b.expectations] == ["ran"] and b.error is not None
    step = f"in steps[1] (expect, {tmp_path / 'b.yaml'}:{EXPECT_LINE})"
    assert (b.error, b.last_step) == (runner.interrupted_error("Ctrl-C", step), step)


def _cli_run(tmp_path: Path) -> tuple[int, dict[str, Any]]:
    """``phoneemu run a b c --json r.json`` in this process: its exit status and JSON report."""
    report = tmp_path / "r.json"
    rc = cli.main(["run", *written_scenarios(tmp_path, NAMES, mac_prefix=MAC_PREFIX), "--json", str(report)])
    assert report.exists(), f"no JSON report (exit {rc})"
    return rc, json.loads(report.read_text())


def test_the_command_writes_its_reports_after_a_signal_between_two_scenarios(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A SIGTERM between a and b: the text and the JSON report say a PASS, b and c not run; exit 130.
    Before: ``phoneemu run: interrupted`` and no report."""
    _watchdog_sending(monkeypatch, "stop", 1, signal.SIGTERM)
    rc, doc = _cli_run(tmp_path)
    out = capsys.readouterr().out
    assert rc == 130, out
    assert doc["interrupted"] is True and doc["stopped"] == [] and doc["not_run"] == ["b", "c"], doc
    assert [(s["name"], s["outcome"]) for s in doc["scenarios"]] == [("a", "PASS")]
    assert "interrupted: 2 scenarios not run (b, c)" in out, out


def test_a_signal_while_the_reports_are_made_waits_for_them(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A Ctrl-C after every scenario finished, while the text report is made: the text and the JSON
    report are still written whole (every scenario PASS), exit 130. Before: the interrupt escaped the
    report, none was written."""
    send = send_once(signal.SIGINT)
    real = reports.render_text

    def render_text(summary: RunSummary, **kwargs: Any) -> str:
        send()
        return real(summary, **kwargs)

    monkeypatch.setattr(reports, "render_text", render_text)
    rc, doc = _cli_run(tmp_path)
    out = capsys.readouterr().out
    assert rc == 130, out
    assert [(s["name"], s["outcome"]) for s in doc["scenarios"]] == [(n, "PASS") for n in NAMES], doc
    assert "OK: 3 scenarios passed (3 PASS)" in out, out


def test_a_second_signal_while_the_reports_are_made_stops_them(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two Ctrl-Cs while the reports are made (one that cannot end: a FIFO nobody reads): the second
    stops the command (``interrupted``, exit 130) rather than being held for ever."""
    real = reports.render_text
    seen: list[str] = []

    def render_text(summary: RunSummary, **kwargs: Any) -> str:
        signal.raise_signal(signal.SIGINT)
        seen.append("first held")
        signal.raise_signal(signal.SIGINT)
        seen.append("second held")
        return real(summary, **kwargs)

    monkeypatch.setattr(reports, "render_text", render_text)
    rc = cli.main(["run", *written_scenarios(tmp_path, NAMES, mac_prefix=MAC_PREFIX)])
    err = capsys.readouterr().err
    assert (rc, seen) == (130, ["first held"]), err
    assert "interrupted" in err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_after_a_scenario_ended_keeps_its_verdict(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                           fake_scenarios: list[str],
                                                           sig: signal.Signals) -> None:
    """After b's steps and close returned, still inside its time limit's alarm (put away as asyncio.run
    returns; asyncio closing its loop is the same moment): b kept PASS, c not run, nothing stopped. Was: b
    an ERROR "interrupted before the scenario finished", its verdict lost."""
    send = send_once(sig)
    real = runner.hard_stop

    @contextlib.contextmanager
    def hard_stop(after: float) -> Iterator[None]:
        with real(after):
            yield
            if fake_scenarios == ["a", "b"]:
                send()

    monkeypatch.setattr(runner, "hard_stop", hard_stop)
    summary = _run(tmp_path)
    assert fake_scenarios == ["a", "b"]
    assert verdicts(summary) == {"a": "PASS", "b": "PASS"}
    assert (summary.interrupted, summary.stopped, summary.not_run) == (True, [], ["c"])
    assert summary.scenarios[1].error is None


def test_a_signal_after_the_run_s_last_look_is_not_dropped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A Ctrl-C after the reports were written and the run's last look, before Python's handler is back:
    exit 130 (the reports written whole). Was: held and never delivered, exit 0."""
    real = runner._ended

    def ended(*args: Any) -> None:
        real(*args)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(runner, "_ended", ended)
    rc, doc = _cli_run(tmp_path)
    out = capsys.readouterr().out
    assert rc == 130, out
    assert [(s["name"], s["outcome"]) for s in doc["scenarios"]] == [(n, "PASS") for n in NAMES], doc


def test_an_ignored_sigint_is_put_back_when_the_run_s_options_are_refused(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``main(["run", ...])`` with SIGINT ignored (a shell's background job) and a bad
    PHONEEMU_LAB_HOST_BASE: exit 2, SIGINT ignored again after it. Was: left Python's handler (the run set
    it before the options that refused the value, outside the ``try`` that puts it back)."""
    monkeypatch.setenv("PHONEEMU_LAB_HOST_BASE", "99")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    term = signal.getsignal(signal.SIGTERM)
    rc = cli.main(["run", *written_scenarios(tmp_path, NAMES, mac_prefix=MAC_PREFIX)])
    err = capsys.readouterr().err
    assert rc == 2 and "PHONEEMU_LAB_HOST_BASE" in err, err
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) is term
