"""``phoneemu run --junit F --json F`` never leaves an earlier run's report at F: after the command, a report
there is this run's, or there is none (a CI job archiving F after an interrupted or refused run read the
last run's, possibly green, results).

Before: a Ctrl-C or SIGTERM while the scenario files were loaded, an internal error there, a refused
option (``--capture`` a file, ``--junit`` in a missing folder: the other report), ``--list`` with a report,
a report whose write failed (a full disk) and a second Ctrl-C while the reports were written each left the
earlier file in place. The signals are real (sent by the run's own code at one point,
:func:`tests.run_helpers.send_once`); the scenarios are a stand-in ``run_scenario`` (no lab).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phoneemu import cli
from phoneemu.scenario import loader, reports, runner
from phoneemu.scenario.results import RunSummary
from tests.run_helpers import (
    earlier_reports,
    junit_errors,
    passing_run_scenario,
    send_once,
    written_scenarios,
)
from tests.signal_rules import signals_as_commands_set_them

pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="signal handlers are the main thread's")

EARLIER = "an earlier run's report\n"


@pytest.fixture(autouse=True)
def signals_as_the_command_sets_them() -> Iterator[None]:
    with signals_as_commands_set_them():
        yield


@pytest.fixture(autouse=True)
def fake_scenarios(monkeypatch: pytest.MonkeyPatch) -> None:
    """``run_scenario`` replaced: one passing expectation per scenario, no lab."""
    monkeypatch.setattr(runner, "run_scenario", passing_run_scenario([]))


def _setup(tmp_path: Path) -> tuple[list[str], Path, Path]:
    """Scenarios a, b, c and an earlier run's out.xml and out.json."""
    files = written_scenarios(tmp_path, "abc", mac_prefix="0F00000000")
    junit, json_report = earlier_reports(tmp_path, EARLIER)
    return files, junit, json_report


@pytest.mark.parametrize(("sig", "by"), [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")])
def test_a_signal_while_the_files_load_writes_interrupted_reports(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sig: signal.Signals, by: str) -> None:
    """Interrupted as b.yaml is read: exit 130, the JUnit report an error naming the signal, the JSON
    interrupted, nothing ran."""
    files, junit, json_report = _setup(tmp_path)
    send = send_once(sig)
    real = loader.load_file

    def load_file(path: Path) -> Any:
        if Path(path).name == "b.yaml":
            send()
        return real(path)

    monkeypatch.setattr(loader, "load_file", load_file)
    rc = cli.main(["run", *files, "--junit", str(junit), "--json", str(json_report)])
    assert rc == 130
    assert junit_errors(junit) == [f"interrupted ({by}) before any scenario started: nothing ran"]
    doc = json.loads(json_report.read_text())
    assert (doc["ok"], doc["ran"], doc["interrupted"], doc["scenarios"]) == (False, False, True, [])


def test_an_internal_error_while_loading_writes_reports_naming_it(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    files, junit, json_report = _setup(tmp_path)

    def load_file(path: Path) -> Any:
        raise RuntimeError("loader bug")

    monkeypatch.setattr(loader, "load_file", load_file)
    with pytest.raises(RuntimeError):
        cli.main(["run", *files, "--junit", str(junit), "--json", str(json_report)])
    assert junit_errors(junit) == ["internal error before any scenario started: RuntimeError: loader bug "
                                    "(its traceback on stderr)"]
    doc = json.loads(json_report.read_text())
    assert (doc["ran"], doc["interrupted"]) == (False, False)
    assert doc["mistakes"][0]["text"] == junit_errors(junit)[0]


@pytest.mark.parametrize("refused", ["capture-a-file", "junit-folder-missing", "junit-a-scenario-file"])
def test_a_refused_option_replaces_each_report_it_can(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      refused: str) -> None:
    """Exit 2, nothing ran: each report that can be written says why (never the earlier one); a scenario
    file named as a report is not touched."""
    files, junit, json_report = _setup(tmp_path)
    extra: list[str] = []
    if refused == "capture-a-file":
        (tmp_path / "caps").write_text("")
        extra = ["--capture", str(tmp_path / "caps")]
    elif refused == "junit-folder-missing":
        junit = tmp_path / "missing" / "out.xml"
    else:
        junit = Path(files[0])
    scenario_text = Path(files[0]).read_text()
    rc = cli.main(["run", *files, "--junit", str(junit), "--json", str(json_report), *extra])
    err = capsys.readouterr().err
    assert rc == 2, err
    said = err.strip().removeprefix("phoneemu run: ")
    assert json.loads(json_report.read_text())["mistakes"][0]["text"] == said
    assert Path(files[0]).read_text() == scenario_text
    if refused == "capture-a-file":
        assert junit_errors(junit) == [said]


def test_list_with_a_report_is_refused_and_the_report_says_so(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    files, junit, json_report = _setup(tmp_path)
    rc = cli.main(["run", *files, "--list", "--junit", str(junit), "--json", str(json_report)])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "", (out, err)
    assert "--list runs nothing, so there is no run to report: give --list or --junit, not both" in err
    assert "--list runs nothing" in junit_errors(junit)[0]
    assert json.loads(json_report.read_text())["ran"] is False


def test_a_report_whose_write_fails_leaves_no_earlier_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The JSON's write fails (a full disk): the earlier out.json is removed and said; the JUnit report is
    this run's; exit 2 as before."""
    files, junit, json_report = _setup(tmp_path)

    def write_json(summary: RunSummary, path: Path) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(reports, "write_json", write_json)
    rc = cli.main(["run", *files, "--junit", str(junit), "--json", str(json_report)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert not json_report.exists()
    said = f"--json {json_report}: not written: No space left on device; the earlier file there removed"
    assert said in err, err
    assert {s.get("name") for s in ET.parse(junit).getroot().iter("testsuite")} == {"a", "b", "c"}


def test_a_second_signal_while_the_reports_are_written_leaves_no_earlier_one(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two Ctrl-Cs while the text report is made (the second stops the command, exit 130): neither report
    written, the earlier out.xml removed and said; a FIFO (--json) is left as it is."""
    files, junit, _ = _setup(tmp_path)
    fifo = tmp_path / "r.fifo"
    os.mkfifo(fifo)
    real = reports.render_text

    def render_text(summary: RunSummary, **kwargs: Any) -> str:
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)
        return real(summary, **kwargs)

    monkeypatch.setattr(reports, "render_text", render_text)
    rc = cli.main(["run", *files, "--junit", str(junit), "--json", str(fifo)])
    err = capsys.readouterr().err
    assert rc == 130, err
    assert not junit.exists()
    assert f"--junit {junit}: not written (the run stopped first); the earlier file there removed" in err
    assert fifo.exists() and "--json" not in err
