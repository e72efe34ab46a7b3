"""``fleet boot``'s reports (red team of predict, R18, on fleet boot): never an earlier run's, never over
an input. Files only: the storm is a stand-in (``run_fleet``), no socket.

* A run that ends without writing ``--json``, ``--junit`` or ``--plot`` (bad input, a second Ctrl-C, a
  full disk) leaves no earlier run's file at that path, and says so in one line each (was: yesterday's
  report left for a CI job to archive as today's); a report it wrote stays; a FIFO is left alone.
* A report naming a file of a phone's flash in ``--flash``, of ``--installed-config-dir`` or of the
  ``--lab`` folder is refused before any work, the file kept and no earlier report removed (was: the
  phone's ``phone.json``, the config it holds, the lab's served ITL replaced by the JSON; ``--keylog
  lab/cluster.json`` appended TLS secrets to the lab's state).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.fleet.metrics import BootRecord, FleetMetrics
from phoneemu.fleet.shard import FleetResult, ShardResult
from tests.helpers import one_line_cli_error

MAC = "0A0000000000"
FLEET = ["fleet", "boot", "--count", "1", "--mac-start", MAC, "--tftp", "127.0.0.1:9", "--shards", "0",
         "--no-http", "-q"]
EARLIER = "yesterday's report\n"


def _no_storm(monkeypatch: pytest.MonkeyPatch) -> None:
    """A storm that started would be the bug: fail at once."""
    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("a storm started")
    monkeypatch.setattr("phoneemu.commands.fleet.run_fleet", refuse)


def _storm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The storm, standing in: the phone booted."""
    def run_fleet(_spec: Any, **_options: Any) -> FleetResult:
        m = FleetMetrics()
        rec = BootRecord(mac=MAC, outcome="ok", rule="G.4-signed-by-itl-tftp", latency_s=0.01, end_s=0.01)
        m.add(rec)
        return FleetResult(metrics=m, shards=[ShardResult(shard=0, metrics=m)], records=[rec])
    monkeypatch.setattr("phoneemu.commands.fleet.run_fleet", run_fleet)


def _earlier(*paths: Path) -> None:
    for path in paths:
        path.write_text(EARLIER)


def test_bad_input_leaves_no_earlier_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    _no_storm(monkeypatch)
    js, junit = tmp_path / "f.json", tmp_path / "f.xml"
    _earlier(js, junit)
    assert main([*FLEET, "--installed-itl", str(tmp_path / "missing.tlv"), "--json", str(js),
                 "--junit", str(junit)]) == 2
    err = capsys.readouterr().err
    assert not js.exists() and not junit.exists()  # was: yesterday's reports
    assert f"--json {js}: the earlier file there removed (this run wrote no report there)" in err
    assert f"--junit {junit}: the earlier file there removed" in err
    assert "Traceback" not in err and len(err.splitlines()) == 3, err


def test_no_earlier_plot_is_left_by_a_refused_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """``--plot r`` writes ``r.png``: that file is the one removed."""
    _no_storm(monkeypatch)
    plot = tmp_path / "storm.png"
    _earlier(plot)
    assert main([*FLEET, "--capture-limit", "1", "--plot", str(tmp_path / "storm")]) == 2
    err = capsys.readouterr().err
    assert not plot.exists() and f"--plot {plot}: the earlier file there removed" in err, err


def test_a_report_not_written_leaves_no_earlier_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A full disk as the JUnit report is written: the JSON written stays, the JUnit path holds nothing."""
    _storm(monkeypatch)

    def full(*_a: Any, **_k: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr("phoneemu.commands.fleet._write_junit", full)
    js, junit = tmp_path / "f.json", tmp_path / "f.xml"
    _earlier(js, junit)
    assert main([*FLEET, "--json", str(js), "--junit", str(junit)]) == 2
    err = capsys.readouterr().err
    assert json.loads(js.read_text())["summary"]["booted"] == 1  # this run's, kept
    assert not junit.exists(), err  # was: yesterday's
    assert f"--junit {junit}: the earlier file there removed" in err
    assert f"--json {js}: the earlier" not in err
    assert f"--junit {junit}: not written: No space left on device" in err


def test_a_second_ctrl_c_leaves_no_earlier_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    def aborted(_spec: Any, *, on_storm: Any, **_options: Any) -> FleetResult:
        on_storm()
        raise KeyboardInterrupt  # a second Ctrl-C: the storm aborted, no summary
    monkeypatch.setattr("phoneemu.commands.fleet.run_fleet", aborted)
    junit = tmp_path / "f.xml"
    _earlier(junit)
    assert main([*FLEET, "--junit", str(junit)]) == 130
    assert not junit.exists()
    assert f"--junit {junit}: the earlier file there removed" in capsys.readouterr().err


def test_written_reports_stay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    _storm(monkeypatch)
    js, junit = tmp_path / "f.json", tmp_path / "f.xml"
    _earlier(js, junit)
    assert main([*FLEET, "--json", str(js), "--junit", str(junit)]) == 0
    assert json.loads(js.read_text())["summary"]["booted"] == 1 and "<testsuites" in junit.read_text()
    assert "removed" not in capsys.readouterr().err


def test_a_fifo_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    _no_storm(monkeypatch)
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    assert main([*FLEET, "--installed-itl", str(tmp_path / "missing.tlv"), "--json", str(fifo)]) == 2
    assert fifo.exists() and "removed" not in capsys.readouterr().err


@pytest.mark.parametrize(("option", "folder", "file"), [
    ("--flash", "fleet", f"{MAC}/phone.json"),
    ("--installed-config-dir", "old", f"SEP{MAC}.cnf.xml"),
    ("--lab", "lab", "cluster.json"),
    ("--lab", "lab", "tftp/ITLFile.tlv"),
])
@pytest.mark.parametrize("output", ["--json", "--junit", "--keylog"])
def test_a_report_naming_a_file_of_an_input_folder_is_refused(
        option: str, folder: str, file: str, output: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _no_storm(monkeypatch)
    given = tmp_path / folder
    held = given / file
    held.parent.mkdir(parents=True)
    held.write_bytes(b"the input's bytes")
    line = one_line_cli_error([*FLEET, option, str(given), output, str(held)], capsys)
    assert line.startswith(f"phoneemu fleet boot: {output} {held}: is a file of "), line
    assert line.endswith(f"{option} {given}; it would be overwritten"), line
    assert held.read_bytes() == b"the input's bytes"


def test_a_report_beside_the_phones_flashes_is_no_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A file in ``--flash DIR`` itself is no phone's (``DIR/<MAC>`` are): a report there is written."""
    _storm(monkeypatch)
    fleet = tmp_path / "fleet"
    js = fleet / "report.json"
    fleet.mkdir()
    _earlier(js)
    assert main([*FLEET, "--flash", str(fleet), "--json", str(js)]) == 0, capsys.readouterr().err
    assert json.loads(js.read_text())["summary"]["booted"] == 1
