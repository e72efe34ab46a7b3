"""``predict`` red team (R18): the new files and the reports, as a demanding user gives them. Files only, no
socket.

* A TFTP root of more than 10,000 files (a cluster of 3,400 phones serves three or four files each) is
  predicted (was: ``NEW_FILE: more than 10000 files given``, exit 2, for the fleets of 100,000 phones
  ``--fleet-flash`` takes); the same file given twice (a folder and a file in it) is taken once (was: "a
  second file named ITLFile.tlv (the other: ...ITLFile.tlv)", the same file).
* A report naming an input (``--json-file`` the ``--installed-itl``, ``--junit`` a file of the new folder)
  is refused before anything is written, the input kept (was: replaced by the report); ``--json-file`` and
  ``--junit`` one file is refused (was: the JUnit report overwrote the JSON one).
* A prediction that ends without writing a report (bad input) leaves no earlier run's report at its path
  (was: the last run's report stayed, a CI job archived it as this run's); one written stays.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from phoneemu.cli import main

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
NOW = "1780000000"
CONFIG = "SEP001122334455.cnf.xml.sgn"


@pytest.fixture
def new(tmp_path: Path) -> Path:
    """A TFTP root: the lab ITL and a config it signs (accepted by a phone holding that ITL)."""
    root = tmp_path / "tftp"
    root.mkdir()
    (root / "ITLFile.tlv").write_bytes((VECTORS / "itl_lab.tlv").read_bytes())
    (root / CONFIG).write_bytes((VECTORS / CONFIG).read_bytes())
    return root


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    path = tmp_path / "installed" / "ITLFile.tlv"
    path.parent.mkdir()
    path.write_bytes((VECTORS / "itl_lab.tlv").read_bytes())
    return path


def _predict(*argv: str | Path) -> int:
    return main(["predict", "--now", NOW, "--mac", "001122334455", *(str(a) for a in argv)])


def test_a_tftp_root_of_more_than_10000_files_is_predicted(new: Path, installed: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    for n in range(10_050):  # other phones' configs (links: no copy)
        os.link(new / CONFIG, new / f"SEP0A{n:010X}.cnf.xml.sgn")
    assert _predict("--installed-itl", installed, "--json", new) == 0
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert doc["report"]["ok"] and doc["report"]["config"] == "accepted", out.err


def test_the_same_file_given_twice_is_taken_once(new: Path, installed: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert _predict("--installed-itl", installed, new / CONFIG, new, new / CONFIG) == 0
    out = capsys.readouterr()
    assert "accepted" in out.out and out.err == "", out
    assert "given but never asked for" not in out.out  # the file asked for is the one named


def test_two_files_of_one_name_are_still_refused(new: Path, installed: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / CONFIG).write_bytes(b"<device/>")
    assert _predict("--installed-itl", installed, new, other / CONFIG) == 2
    assert f"a second file named {CONFIG}" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--json-file", "--junit"])
def test_a_report_naming_an_input_is_refused_and_the_input_kept(new: Path, installed: Path, option: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    itl = installed.read_bytes()
    assert _predict("--installed-itl", installed, option, installed, new) == 2
    err = capsys.readouterr().err
    assert f"{option} {installed}: is --installed-itl {installed}: the report would overwrite it" in err
    assert installed.read_bytes() == itl
    config = (new / CONFIG).read_bytes()
    assert _predict("--installed-itl", installed, option, new / CONFIG, new) == 2
    err = capsys.readouterr().err
    assert f"is a file of NEW_FILE {new}: the report would overwrite it" in err and len(err.splitlines()) == 1
    assert (new / CONFIG).read_bytes() == config


def test_json_file_and_junit_one_file_is_refused(new: Path, installed: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report"
    assert _predict("--installed-itl", installed, "--json-file", report, "--junit", report, new) == 2
    assert f"--junit {report}: the same file as --json-file {report}" in capsys.readouterr().err
    assert not report.exists()


def test_no_earlier_report_is_left_by_a_prediction_that_failed(new: Path, installed: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    json_file, junit = tmp_path / "p.json", tmp_path / "p.xml"
    assert _predict("--installed-itl", installed, "--json-file", json_file, "--junit", junit, new) == 0
    assert json.loads(json_file.read_text())["report"]["ok"] and "<testsuites" in junit.read_text()
    capsys.readouterr()
    assert _predict("--installed-itl", tmp_path / "missing.tlv", "--json-file", json_file, "--junit", junit,
                    new) == 2
    err = capsys.readouterr().err
    assert not json_file.exists() and not junit.exists()  # was: the last run's (accepted) reports
    assert f"--json-file {json_file}: the earlier file there removed" in err
    assert f"--junit {junit}: the earlier file there removed" in err
