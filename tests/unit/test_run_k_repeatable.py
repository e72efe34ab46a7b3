"""``phoneemu run -k`` is repeatable and means "any of them", as ``--tag`` does (was: a plain option, the
last ``-k`` silently won, so ``-k wave -k big`` ran only ``big`` and CI went green without ``wave``).
Selecting nothing, or a -k selecting nothing, is an error (exit 2) naming each such -k (stderr, --junit,
--json)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phoneemu.cli import main
from tests.unit.test_scenario_selection import DOC  # the -k and --tag tests' scenario


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name, tags in [("wave-1", "[tvs]"), ("big-fleet", "[fleet]"), ("rollback", "[tvs]")]:
        (tmp_path / f"{name}.yaml").write_text(DOC.format(name=name, tags=tags))
    return tmp_path


def _listed(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line.split()[0] for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize(("args", "names"), [
    (["-k", "wave", "-k", "big"], ["big-fleet", "wave-1"]),
    (["-k", "big", "-k", "wave"], ["big-fleet", "wave-1"]),  # the scenario order, whatever the -k order
    (["-k", "w*", "--select", "roll"], ["rollback", "wave-1"]),
    (["-k", "wave", "-k", "big", "--tag", "tvs"], ["wave-1"]),  # and --tag: both options must pass
])
def test_every_k_selects(folder: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                         names: list[str]) -> None:
    assert main(["run", str(folder), "--list", *args]) == 0
    assert _listed(capsys) == names


def test_k_selecting_nothing_names_every_k_on_stderr_and_in_the_reports(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    said = "-k 'nope' or 'zz*' matches none of the 3 scenarios (big-fleet, rollback, wave-1)"
    assert main(["run", str(folder), "--list", "-k", "nope", "-k", "zz*"]) == 2
    assert said in capsys.readouterr().err
    junit, report = folder.parent / "out.xml", folder.parent / "out.json"
    assert main(["run", str(folder), "-k", "nope", "-k", "zz*", "--junit", str(junit), "--json",
                 str(report)]) == 2
    [case] = ET.parse(junit).getroot().iter("testcase")
    error = case.find("error")
    assert error is not None and said in error.get("message", "")
    [mistake] = json.loads(report.read_text())["mistakes"]
    assert said in mistake["problem"]


def test_one_k_matching_nothing_is_an_error_though_the_others_select(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each -k must select a scenario (was: ``-k wave -k nomatch`` ran wave-1, exit 0: a typo went green)."""
    assert main(["run", str(folder), "--list", "-k", "wave", "-k", "nomatch"]) == 2
    said = "-k 'nomatch' matches none of the 3 scenarios (big-fleet, rollback, wave-1)"
    assert said in capsys.readouterr().err


def test_one_k_is_said_as_before(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(folder / "wave-1.yaml"), "--list", "-k", "nope"]) == 2
    assert "-k 'nope' does not match the 1 scenario (wave-1)" in capsys.readouterr().err


def test_help_says_k_is_repeatable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "-k TEXT, --select TEXT" in out
    assert "repeatable: any of them)" in out.split("-k TEXT, --select TEXT", 1)[1].split("--tag TAG", 1)[0]
