"""``phoneemu run`` as a CI job meets it (a voice engineer's conformance walk):

* a run that runs nothing (exit 2: a mistake in a scenario file, no scenario file, ``-k`` selecting
  nothing) writes ``--junit`` and ``--json`` saying so — before, they were left as the last run wrote
  them, so a CI job published an earlier run's green report beside the red exit status;
* a YAML syntax error names its column and where the construct it broke began (before: a line only, the
  line where YAML noticed — lines after an unclosed ``[`` or quote)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.errors import ScenarioError
from phoneemu.scenario.loader import load_text

GOOD = """name: good
phones:
  p: {mac: "0A00000D1001"}
steps:
  - boot: p
  - expect: {phones: p, itl: installed}
"""
UNCLOSED = GOOD.replace("  - boot: p\n", "  - boot: [p\n")  # line 5, column 11 opens it


def _error_message(case: ET.Element) -> str:
    error = case.find("error")
    assert error is not None, ET.tostring(case)
    return error.get("message", "")


def _stale_reports(tmp_path: Path) -> tuple[Path, Path]:
    """The reports an earlier green run left: what a CI job finds in a reused workspace."""
    junit, report = tmp_path / "out.xml", tmp_path / "out.json"
    junit.write_text('<?xml version="1.0"?><testsuites name="phoneemu" tests="1" failures="0" errors="0"/>\n')
    report.write_text('{"ok": true}\n')
    return junit, report


def test_a_mistake_in_a_file_replaces_the_reports_with_its_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "a.yaml").write_text(UNCLOSED)
    (folder / "b.yaml").write_text(GOOD.replace("name: good", "name: other").replace("itl: installed",
                                                                                    "itl: instaled"))
    junit, report = _stale_reports(tmp_path)
    assert main(["run", str(folder), "--junit", str(junit), "--json", str(report)]) == 2
    err = capsys.readouterr().err
    suites = ET.parse(junit).getroot()  # well-formed
    assert (suites.get("tests"), suites.get("errors"), suites.get("failures")) == ("2", "2", "0")
    cases = list(suites.iter("testcase"))
    assert [c.get("name") for c in cases] == [f"load {folder / 'a.yaml'}:6", f"load {folder / 'b.yaml'}:6"]
    assert [(c.get("file"), c.get("line")) for c in cases] == [(str(folder / "a.yaml"), "6"),
                                                                 (str(folder / "b.yaml"), "6")]
    messages = [_error_message(c) for c in cases]
    assert all(m in err for m in messages)  # each as printed: file:line field: problem
    assert "steps[1].expect.itl: " in messages[1] and "instaled" in messages[1]
    doc = json.loads(report.read_text())
    assert (doc["ok"], doc["ran"], doc["scenarios"]) == (False, False, [])
    assert [(m["file"], m["line"]) for m in doc["mistakes"]] == [(str(folder / "a.yaml"), 6),
                                                                 (str(folder / "b.yaml"), 6)]
    assert doc["mistakes"][1]["field"] == "steps[1].expect.itl"


def test_no_scenario_and_nothing_selected_say_so_in_the_reports(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    junit, report = _stale_reports(tmp_path)
    assert main(["run", str(empty), "--junit", str(junit), "--json", str(report)]) == 2
    [case] = ET.parse(junit).getroot().iter("testcase")
    assert _error_message(case) == f"{empty}: no scenario files (*.yaml, *.yml) found"
    [mistake] = json.loads(report.read_text())["mistakes"]
    assert mistake["problem"] == "no scenario files (*.yaml, *.yml) found"
    (tmp_path / "good.yaml").write_text(GOOD)
    assert main(["run", str(tmp_path / "good.yaml"), "-k", "nosuch", "--junit", str(junit)]) == 2
    [case] = ET.parse(junit).getroot().iter("testcase")
    assert "-k 'nosuch' does not match the 1 scenario (good)" in _error_message(case)


def test_a_report_naming_a_scenario_file_is_never_written(tmp_path: Path) -> None:
    """A broken run must not overwrite its own input: a --junit naming a scenario file is left alone."""
    broken = tmp_path / "a.yaml"
    broken.write_text(UNCLOSED)
    assert main(["run", str(tmp_path), "--junit", str(broken)]) == 2
    assert broken.read_text() == UNCLOSED


def test_a_yaml_syntax_error_names_its_column_and_where_the_construct_began() -> None:
    with pytest.raises(ScenarioError) as caught:
        load_text(UNCLOSED, "a.yaml")
    assert caught.value.line == 6  # where YAML noticed it: the line after the "[" ...
    assert str(caught.value) == ("a.yaml:6: invalid YAML at column 11: expected ',' or ']', but got ':' "
                                 "(while parsing a flow sequence at line 5, column 11)")  # ... and the "["
    with pytest.raises(ScenarioError) as caught:
        load_text(GOOD.replace('"0A00000D1001"', '"0A00000D1001'), "b.yaml")
    assert "(while scanning a quoted scalar at line 3, column 12)" in str(caught.value)
