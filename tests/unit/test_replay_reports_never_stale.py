"""``replay``'s reports (red team of predict, R18, on replay): never an earlier run's, never over an input.
Files only (a reference capture of the catalogue), no socket.

* ``--all``: a replay that ends without writing ``--junit`` or ``--json-file`` (bad input, an interrupt,
  a full disk) leaves no earlier run's file at that path, said in one line each (was: yesterday's report
  left for a CI job to archive as today's); a report it wrote stays; a FIFO is left alone. ``--mac`` with
  a report option is refused as before, and leaves no earlier report either.
* A report naming the capture, the ``--keylog``, another input file, a file of ``--installed-config-dir``
  or of a phone's flash in ``--fleet-flash`` is refused before any work, the input kept (was: ``replay
  CAP.pcap --all --junit CAP.pcap`` replaced the capture by the report, exit 0); ``--junit`` and
  ``--json-file`` one file is refused (was: the JSON written over the JUnit report, exit 0).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from tests.helpers import one_line_cli_error

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
EARLIER = "yesterday's report\n"


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    """A private copy of a catalogue capture and its key log (``CAP.keys``)."""
    for suffix in (".pcap", ".keys"):
        shutil.copyfile(CAPTURES / f"first-boot-trusts-first-itl{suffix}", tmp_path / f"cap{suffix}")
    return tmp_path / "cap.pcap"


def _earlier(*paths: Path) -> None:
    for path in paths:
        path.write_text(EARLIER)


def _replay_all(capture: Path, *argv: str | Path) -> int:
    return main(["replay", str(capture), "--all", *(str(a) for a in argv)])


def test_bad_input_leaves_no_earlier_report(capture: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    junit, js = tmp_path / "r.xml", tmp_path / "r.json"
    _earlier(junit, js)
    missing = tmp_path / "missing"
    assert _replay_all(capture, "--fleet-flash", missing, "--junit", junit, "--json-file", js) == 2
    err = capsys.readouterr().err
    assert not junit.exists() and not js.exists()  # was: yesterday's reports
    assert f"--junit {junit}: the earlier file there removed (this run wrote no report there)" in err
    assert f"--json-file {js}: the earlier file there removed" in err
    assert "Traceback" not in err and len(err.splitlines()) == 3, err


def test_an_interrupt_leaves_no_earlier_report(capture: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(*_a: Any, **_k: Any) -> Any:
        raise KeyboardInterrupt
    monkeypatch.setattr("phoneemu.scenario.replay_fleet.replay_fleet", interrupted)
    junit = tmp_path / "r.xml"
    _earlier(junit)
    assert _replay_all(capture, "--junit", junit) == 130
    assert not junit.exists()
    assert f"--junit {junit}: the earlier file there removed" in capsys.readouterr().err


def test_a_report_not_written_leaves_no_earlier_one(capture: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A full disk as the JSON document is written: the JUnit report written before it stays."""
    def full(*_a: Any, **_k: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr("phoneemu.commands._replay_all.write_output_text", full)
    junit, js = tmp_path / "r.xml", tmp_path / "r.json"
    _earlier(junit, js)
    assert _replay_all(capture, "--junit", junit, "--json-file", js) == 2
    err = capsys.readouterr().err
    assert "<testsuites" in junit.read_text()  # this run's, kept
    assert not js.exists(), err  # was: yesterday's
    assert f"--json-file {js}: the earlier file there removed" in err and f"--junit {junit}: the" not in err


def test_written_reports_stay(capture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junit, js = tmp_path / "r.xml", tmp_path / "r.json"
    _earlier(junit, js)
    assert _replay_all(capture, "--junit", junit, "--json-file", js) == 0
    assert "<testsuites" in junit.read_text() and json.loads(js.read_text())["phones"] >= 1
    assert "removed" not in capsys.readouterr().err


def test_a_fifo_is_left_alone(capture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "r.fifo"
    os.mkfifo(fifo)
    assert _replay_all(capture, "--fleet-flash", tmp_path / "missing", "--junit", fifo) == 2
    assert fifo.exists() and "removed" not in capsys.readouterr().err


def test_one_phone_with_a_report_option_leaves_no_earlier_report(capture: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    junit = tmp_path / "r.xml"
    _earlier(junit)
    assert main(["replay", str(capture), "--mac", "0A0000000001", "--junit", str(junit)]) == 2
    err = capsys.readouterr().err
    assert "--junit is for --all" in err and not junit.exists(), err


def test_junit_and_json_file_one_file_is_refused(capture: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "r"
    line = one_line_cli_error(["replay", str(capture), "--all", "--junit", str(report), "--json-file",
                               str(report)], capsys)
    assert line == f"phoneemu replay: --json-file {report}: the same file as --junit {report}"
    assert not report.exists()


@pytest.mark.parametrize("output", ["--junit", "--json-file"])
@pytest.mark.parametrize("given", ["the capture", "--keylog", "--installed-itl", "--models"])
def test_a_report_naming_an_input_file_is_refused(given: str, output: str, capture: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    keys = capture.with_suffix(".keys")
    read = {"the capture": capture, "--keylog": keys, "--installed-itl": keys, "--models": keys}[given]
    before = read.read_bytes()
    argv = ["replay", str(capture), "--all", *([given, str(read)] if given.startswith("--") else []),
            output, str(read)]
    line = one_line_cli_error(argv, capsys)
    assert line == (f"phoneemu replay: {output} {read}: is {given} {read}: the report would overwrite it "
                    "(give another file)")
    assert read.read_bytes() == before


@pytest.mark.parametrize(("option", "file", "what"), [
    ("--installed-config-dir", "SEP0A0000000001.cnf.xml", "--installed-config-dir"),
    ("--fleet-flash", "0A0000000001/phone.json", "a phone's flash in --fleet-flash"),
])
def test_a_report_naming_a_file_of_an_input_folder_is_refused(
        option: str, file: str, what: str, capture: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "given"
    held = folder / file
    held.parent.mkdir(parents=True)
    held.write_bytes(b"the input's bytes")
    line = one_line_cli_error(["replay", str(capture), "--all", option, str(folder), "--junit", str(held)],
                              capsys)
    assert line == (f"phoneemu replay: --junit {held}: is a file of {what} {folder}: the report would "
                    "overwrite it (give another file)")
    assert held.read_bytes() == b"the input's bytes"


def test_a_report_that_links_to_the_capture_is_refused(capture: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A report path that is a symbolic link is written to the file it names (files.output_target)."""
    link = tmp_path / "r.xml"
    link.symlink_to(capture)
    before = capture.read_bytes()
    line = one_line_cli_error(["replay", str(capture), "--all", "--junit", str(link)], capsys)
    assert line.endswith(f"--junit {link}: is the capture {capture}: the report would overwrite it (give "
                         "another file)"), line
    assert capture.read_bytes() == before and link.is_symlink()
