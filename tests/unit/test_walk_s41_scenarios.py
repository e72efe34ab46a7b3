"""``phoneemu run``'s scenario handling as a user audit found it:

* each -k and each --tag must select a scenario of the run (was: ``-k migration -k rollbak`` ran migration
  alone, exit 0: a typo turned CI green), and a --tag that none of the scenarios -k selected carries says
  so (was: "no scenario carries it" of a tag another scenario carries);
* a folder's ``*.YAML`` / ``*.Yml`` are scenarios (were skipped), and a file's default name drops the
  suffix in any case; a folder's dot-files and dot-folders are not read (``.github/workflows/ci.yml`` was
  read as a scenario, exit 2);
* ``label: run`` is refused at load time: the JUnit testcase of an ERROR is ``run`` (an expectation so
  labelled was renamed ``run #2`` when its scenario errored);
* two files of one default name are a mistake at line 1 of the later file (was: no line);
* ``lsc_key: EC`` / ``RSA``: the key type alone holds for any size or curve (was: never held);
* the JSON ``counts`` and ``expectation_counts`` have every outcome, 0 included (was: ``["FAIL"]``
  raised KeyError on a green run); the interrupted line leaves out a part with no scenario (was: ``; 0
  scenarios not run``).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from phoneemu.cli import main
from phoneemu.errors import ScenarioError
from phoneemu.scenario import checks
from phoneemu.scenario.loader import discover, load_text
from phoneemu.scenario.reports import render_text, write_json, write_junit
from phoneemu.scenario.results import CheckResult, ExpectationResult, RunSummary, ScenarioResult

DOC = """\
reproduces: t
tags: [{tag}]
phones:
  p: {{mac: "0A0000000001"}}
steps:
  - boot: p
  - expect: {{boot: ok}}
"""


def _write(path: Path, tag: str = "t") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DOC.format(tag=tag))
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The auditor's folder: migration-a, rollback-b and other-c, each tagged ``t-<name>``."""
    for name in ("migration-a", "rollback-b", "other-c"):
        _write(tmp_path / "s" / f"{name}.yaml", f"t-{name}")
    return tmp_path / "s"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["run", "--list", *args])
    out, err = capsys.readouterr()
    return code, [line.split()[0] for line in out.splitlines()], err


@pytest.mark.parametrize(("args", "said"), [
    (["-k", "migration", "-k", "rollbak"],
     "-k 'rollbak' matches none of the 3 scenarios (migration-a, other-c, rollback-b)"),
    (["--tag", "t-other-c", "--tag", "typo"],
     "--tag typo: no scenario carries it (tags in use: t-migration-a, t-other-c, t-rollback-b)"),
    (["--tag", "t-other-c", "--tag", "typo", "--tag", "x"], "--tag typo, x: no scenario carries any of them"),
    (["-k", "migration", "--tag", "t-rollback-b"],
     "--tag t-rollback-b: no scenario selected by -k 'migration' carries it (their tags: t-migration-a)"),
])
def test_each_k_and_tag_must_select_a_scenario(folder: Path, capsys: pytest.CaptureFixture[str],
                                                args: list[str], said: str) -> None:
    code, listed, err = _run(capsys, str(folder), *args)
    assert (code, listed) == (2, []), err
    assert said in err


def test_a_mistyped_k_and_tag_are_both_told_and_in_the_reports(folder: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    junit, report = folder.parent / "out.xml", folder.parent / "out.json"
    assert main(["run", str(folder), "-k", "rollbak", "--tag", "typo", "--junit", str(junit),
                 "--json", str(report)]) == 2
    err = capsys.readouterr().err
    assert "-k 'rollbak' matches none" in err and "--tag typo: no scenario carries it" in err
    assert len(list(ET.parse(junit).getroot().iter("testcase"))) == 2
    assert len(json.loads(report.read_text())["mistakes"]) == 2


@pytest.mark.parametrize(("args", "names"), [
    (["-k", "migration", "-k", "rollback"], ["migration-a", "rollback-b"]),
    (["-k", "migration", "-k", "rollback", "--tag", "t-migration-a"], ["migration-a"]),
    (["--tag", "t-other-c", "--tag", "t-rollback-b"], ["other-c", "rollback-b"]),
])
def test_every_k_and_tag_selecting_still_runs(folder: Path, capsys: pytest.CaptureFixture[str],
                                              args: list[str], names: list[str]) -> None:
    code, listed, err = _run(capsys, str(folder), *args)
    assert (code, listed) == (0, names), err


def test_a_folders_scenarios_in_any_case_and_not_its_dot_files(folder: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    _write(folder / "UP.YAML")
    _write(folder / "mid.Yml")
    _write(folder / "sub" / "inner.yaml")  # subfolders are still read
    ci = "on: push\njobs: {}\n"
    for hidden in ("sub/.hidden/ci.yml", ".github/workflows/ci.yml", ".dot.yaml"):
        (folder / hidden).parent.mkdir(parents=True, exist_ok=True)
        (folder / hidden).write_text(ci)
    code, listed, err = _run(capsys, str(folder))
    assert code == 0, err
    assert sorted(listed) == ["UP", "inner", "mid", "migration-a", "other-c", "rollback-b"]
    assert sorted(f.name for f in discover([folder])) == sorted(
        ["UP.YAML", "mid.Yml", "inner.yaml", "migration-a.yaml", "other-c.yaml", "rollback-b.yaml"])
    # a dot-folder given itself is read: only the folders below the one given are skipped
    assert [f.name for f in discover([folder / "sub" / ".hidden"])] == ["ci.yml"]


@pytest.mark.parametrize(("file_name", "name"), [("B.YAML", "B"), ("c.Yml", "c"), ("d.yaml", "d"),
                                                 ("e.yml", "e")])
def test_a_files_default_name_drops_its_suffix_in_any_case(file_name: str, name: str) -> None:
    assert load_text(DOC.format(tag="t"), file_name).name == name


def test_label_run_is_refused_at_load_time() -> None:
    text = DOC.format(tag="t").replace("expect: {boot: ok}", "expect: {label: run, boot: ok}")
    with pytest.raises(ScenarioError) as err:
        load_text(text, "x.yaml")
    said = "x.yaml:7 steps[1].expect.label: 'run' is the name of the JUnit testcase of a scenario"
    assert str(err.value).startswith(said), err.value
    assert load_text(text.replace("label: run", "label: run it"), "x.yaml").steps  # another label is fine


def test_an_errors_junit_case_is_run(tmp_path: Path) -> None:
    """The documented name of an ERROR's testcase stays ``run`` (CI histories key on it)."""
    s = ScenarioResult(name="sc", path="sc.yaml", reproduces="", error="boom",
                       expectations=[ExpectationResult(where="sc.yaml:7", label="booted", xfail=None)])
    write_junit(RunSummary(scenarios=[s]), tmp_path / "r.xml")
    cases = ET.parse(tmp_path / "r.xml").getroot().iter("testcase")
    assert [c.get("name") for c in cases] == ["run", "booted"]


def test_two_default_names_clash_at_line_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "a" / "x.yaml")
    _write(tmp_path / "b" / "x.yaml")
    junit = tmp_path / "out.xml"
    assert main(["run", str(tmp_path / "a"), str(tmp_path / "b"), "--junit", str(junit)]) == 2
    said = f"{tmp_path / 'b' / 'x.yaml'}:1 name: scenario name 'x' is also the name of "
    assert said in capsys.readouterr().err
    [case] = ET.parse(junit).getroot().iter("testcase")
    assert (case.get("file"), case.get("line")) == (str(tmp_path / "b" / "x.yaml"), "1")


def _phone(key: str | None) -> SimpleNamespace:
    return SimpleNamespace(lsc_key=lambda: key)


@pytest.mark.parametrize(("actual", "expected", "held"), [
    ("EC secp256r1", "EC", True),
    ("EC secp256r1", "EC secp256r1", True),
    ("EC secp384r1", ["RSA", "EC"], True),
    ("RSA 2048", "RSA", True),
    ("RSA 2048", "RSA 2048", True),
    ("RSA 2048", "EC", False),
    ("RSA 2048", "RSA 4096", False),
    ("RSA 2048", "RSA 20", False),  # no prefix of the size: the key type alone, or the whole text
    ("RSA 2048", "2048", False),
    (None, "none", True),
    (None, "EC", False),
])
def test_lsc_key_takes_the_key_type_alone(actual: str | None, expected: object, held: bool) -> None:
    assert checks.evaluate("lsc_key", _phone(actual), expected) == (actual or "none", held)


def _green() -> RunSummary:
    e = ExpectationResult(where="a.yaml:7", label="booted", xfail=None,
                          checks=[CheckResult(phone="0A0000000001", check="boot", expected="ok", actual="ok",
                                              held=True)])
    return RunSummary(scenarios=[ScenarioResult(name="a", path="a.yaml", reproduces="", expectations=[e])])


def test_the_json_counts_have_every_outcome(tmp_path: Path) -> None:
    write_json(_green(), tmp_path / "r.json")
    doc = json.loads((tmp_path / "r.json").read_text())
    zeros = {"PASS": 0, "FAIL": 0, "XFAIL": 0, "XPASS": 0, "ERROR": 0}
    assert doc["counts"] == {**zeros, "PASS": 1}
    assert doc["expectation_counts"] == {**zeros, "PASS": 1}


def test_the_not_run_json_counts_have_every_outcome(tmp_path: Path) -> None:
    assert main(["run", str(tmp_path / "missing.yaml"), "--json", str(tmp_path / "r.json")]) == 2
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["ran"] is False
    zeros = {"PASS": 0, "FAIL": 0, "XFAIL": 0, "XPASS": 0, "ERROR": 0}
    assert doc["counts"] == doc["expectation_counts"] == zeros


@pytest.mark.parametrize(("stopped", "not_run", "line"), [
    (["a"], [], "interrupted: 1 scenario stopped under way (a)"),
    ([], ["b"], "interrupted: 1 scenario not run (b)"),
    (["a"], ["b", "c"], "interrupted: 1 scenario stopped under way (a); 2 scenarios not run (b, c)"),
    ([], [], "interrupted: after the last scenario (every scenario ran)"),
])
def test_the_interrupted_line_leaves_out_a_part_with_none(stopped: list[str], not_run: list[str],
                                                          line: str) -> None:
    summary = _green()
    summary.interrupted, summary.stopped, summary.not_run = True, stopped, not_run
    assert line in render_text(summary, colour=False, verbose=False).splitlines()
