"""Small inconsistencies of ``phoneemu run`` and its scenario files a user audit found (walkthrough s41).

* The ``--json`` report's shape was documented nowhere: docs/scenarios.md "The JSON report" names every
  key the writer emits (checked here against what it writes, so that the section cannot rot).
* ``run --list --junit F`` said "--list runs nothing and writes no report", and wrote a nothing-ran
  report at F: it now says that F says nothing ran.
* A phone group with no value (``p:``) was "expected a mapping, got nothing" while ``p: {}`` and a
  cluster ``c:`` were taken: it is ``p: {}`` now.
* ``tags: ['']`` and ``tags: ci, tvs`` (one tag 'ci, tvs') were taken silently, and ``label: ''``: they
  are ``file:line`` mistakes (``tags: ci`` stays the one tag ci; a number is its text).
* ``run --timeout 90s`` was refused while a file's ``timeout: 90s`` was taken, and the command line took up
  to ten years, the file a day: one reading, one range (0..86400 s) for both.
* A multi-line ``xfail:`` reason was printed raw on its verdict line: it is one line there now, and whole
  in the JSON and JUnit reports.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phoneemu import cli
from phoneemu.commands import run as run_command
from phoneemu.errors import ScenarioError
from phoneemu.scenario import loader
from phoneemu.scenario.capturing import CaptureStop
from phoneemu.scenario.json_report import to_json, write_json_not_run
from phoneemu.scenario.reports import render_text, write_junit
from phoneemu.scenario.results import CheckResult, ExpectationResult, RunSummary, ScenarioResult
from tests.run_helpers import junit_errors

DOCS = Path(__file__).resolve().parents[2] / "docs" / "scenarios.md"

GROUP_AND_STEPS = """\
steps:
  - boot: p
  - expect: {phones: p, status: ok}
"""

SCENARIO = f"""\
phones:
  p: {{}}
{GROUP_AND_STEPS}"""


def _json_section() -> str:
    """docs/scenarios.md from ``## The JSON report`` to the next ``## `` heading."""
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("\n## The JSON report\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _summary(xfail: str | None = None) -> RunSummary:
    """A run of one scenario with one expectation whose check failed (XFAIL with ``xfail``)."""
    exp = ExpectationResult(where="t.yaml:5", label="boots", xfail=xfail,
                            checks=[CheckResult(phone="001122330001", check="status", expected="ok",
                                                actual="TFTP timeout", held=False)],
                            timelines={"001122330001": ["00:00:00 boot"]},
                            deciding={"001122330001": "G.1 (accepted)"},
                            decisions={"001122330001": {"itl": None}})
    stop = CaptureStop(why="reader went away", after_bytes=100, packets_written=1, packets_dropped=2)
    scenario = ScenarioResult(name="t", path="t.yaml", reproduces="", expectations=[exp], phones=1,
                              capture="caps/t.pcap", capture_stopped=stop, tags=["ci"])
    return RunSummary(scenarios=[scenario], duration_s=0.5)


#: the objects whose keys are data (phones, outcomes), not the report's fields
_DATA_KEYED = ("counts", "expectation_counts", "timelines", "deciding", "decisions")


def _keys(value: object) -> set[str]:
    """Every key of every object in ``value``, but those of objects keyed by data (:data:`_DATA_KEYED`)."""
    if isinstance(value, dict):
        return set(value).union(*(_keys(v) for k, v in value.items() if k not in _DATA_KEYED))
    if isinstance(value, list):
        return set().union(*(_keys(v) for v in value))
    return set()


def test_the_docs_json_section_names_every_key_the_report_has(tmp_path: Path) -> None:
    section = _json_section()
    ran = to_json(_summary())
    not_run_path = tmp_path / "not-run.json"
    write_json_not_run((ScenarioError("bad", file="t.yaml", line=2, path="phones"),), not_run_path)
    not_run = json.loads(not_run_path.read_text())
    top = set(ran) | set(not_run)
    assert {"ok", "ran", "counts", "expectation_counts", "scenarios", "mistakes"} <= top
    missing = sorted(k for k in top | _keys(ran) | _keys(not_run) if f"`{k}`" not in section
                     and f'"{k}"' not in section)
    assert not missing, f"keys of the JSON report not in docs/scenarios.md's JSON section: {missing}"
    for key in top:  # the top-level keys in its table, each a row of its own
        assert re.search(rf"^\| [^|]*`{key}`", section, re.MULTILINE), key


def test_list_with_reports_says_they_say_nothing_ran(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "a.yaml"
    scenario.write_text(SCENARIO)
    junit, json_report = tmp_path / "out.xml", tmp_path / "out.json"
    rc = cli.main(["run", str(scenario), "--list", "--junit", str(junit), "--json", str(json_report)])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "", (out, err)
    assert "writes no report" not in err
    assert f"--junit {junit}: --list runs nothing, so there is no run to report: give --list or --junit, " \
        f"not both ({junit} and {json_report} now say that nothing ran" in err, err
    assert "--list runs nothing" in junit_errors(junit)[0]  # what it said is so
    assert json.loads(json_report.read_text())["ran"] is False


def test_list_with_a_report_it_will_not_write_says_nothing_of_one(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "a.yaml"
    scenario.write_text(SCENARIO)
    report = tmp_path / "b.yaml"  # a scenario file's name: never a report's
    rc = cli.main(["run", str(scenario), "--list", "--junit", str(report)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.rstrip().endswith("give --list or --junit, not both"), err
    assert not report.exists()


def test_a_group_with_no_value_is_one_with_no_field() -> None:
    empty = loader.load_text(SCENARIO, "t.yaml")
    bare = loader.load_text(f"phones:\n  p:\n{GROUP_AND_STEPS}", "t.yaml")
    assert bare.phones["p"] == empty.phones["p"]
    assert bare.phones["p"].count == 1


def test_two_groups_with_no_value_overlap_on_the_default_mac() -> None:
    with pytest.raises(ScenarioError) as err:  # read as two groups (their MACs checked), not refused
        loader.load_text(f"phones:\n  p:\n  q:\n{GROUP_AND_STEPS}", "t.yaml")
    assert "t.yaml:3 phones.q" in str(err.value)
    assert "MAC 001122330001 is a phone of groups 'p'" in str(err.value)


@pytest.mark.parametrize(("tags", "expected"), [
    ("ci", ("ci",)), ("[ci, tvs]", ("ci", "tvs")), ("[2024]", ("2024",)), ("[]", ()),
])
def test_tags_that_are_taken(tags: str, expected: tuple[str, ...]) -> None:
    assert loader.load_text(f"tags: {tags}\n{SCENARIO}", "t.yaml").tags == expected


@pytest.mark.parametrize(("tags", "said"), [
    ("['']", "t.yaml:1 tags[0]: empty tag"),
    ("[ci, ' ']", "t.yaml:1 tags[1]: empty tag"),
    ("''", "t.yaml:1 tags: empty tag"),
    ("ci, tvs", "t.yaml:1 tags: 'ci, tvs' is one tag with a comma in it: for several, write tags: [ci, tvs]"),
    ("[a, 'b,c']", "t.yaml:1 tags[1]: 'b,c' is one tag with a comma in it"),
])
def test_a_tag_no_option_selects_is_a_file_line_mistake(tags: str, said: str) -> None:
    with pytest.raises(ScenarioError) as err:
        loader.load_text(f"tags: {tags}\n{SCENARIO}", "t.yaml")
    assert said in str(err.value)


@pytest.mark.parametrize(("label", "said"), [("''", None), ("' '", None), ("5", "5"), ("boots", "boots")])
def test_an_empty_label_is_a_mistake_a_number_its_text(label: str, said: str | None) -> None:
    text = SCENARIO.replace("status: ok}", f"status: ok, label: {label}}}")
    if said is not None:
        exp = loader.load_text(text, "t.yaml").steps[-1]
        assert getattr(exp, "label", None) == said
        return
    with pytest.raises(ScenarioError) as err:
        loader.load_text(text, "t.yaml")
    assert "t.yaml:5 steps[1].expect.label: empty label" in str(err.value)


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90.0), ("10m", 600.0), ("1h", 3600.0), ("1d", 86400.0), ("600", 600.0), ("2.5", 2.5),
    ("0.05", 0.05), (".5", 0.5), ("0", 0.0), ("86400", 86400.0), ("0.1m", 6.0), (" 90 s ", 90.0),
])
def test_run_timeout_is_read_as_the_files_timeout(text: str, seconds: float) -> None:
    assert run_command._time_limit(text) == seconds
    if seconds == int(seconds):  # a file takes whole seconds: the same value
        assert loader.load_text(f"timeout: {text}\n{SCENARIO}", "t.yaml").timeout == seconds


@pytest.mark.parametrize(("text", "said"), [
    ("86401", "'86401': 86401 s is more than 86400 (1 day; 0 = no limit)"),
    ("100000", "more than 86400"), ("2d", "more than 86400"), ("1y", "is not a non-negative number"),
    ("abc", "'abc' is not a non-negative number"), ("-1", "is not a non-negative number"),
    ("nan", "is not a non-negative number"), ("inf", "is not a non-negative number"),
])
def test_run_timeout_has_the_files_range(text: str, said: str) -> None:
    import argparse

    with pytest.raises(argparse.ArgumentTypeError) as err:
        run_command._time_limit(text)
    assert said in str(err.value)


def test_a_files_fractional_timeout_says_why() -> None:
    with pytest.raises(ScenarioError) as err:
        loader.load_text(f"timeout: '2.5s'\n{SCENARIO}", "t.yaml")
    assert "t.yaml:1 timeout: expected seconds from 0 (no limit) to 86400" in str(err.value)
    assert "a file's limit is whole seconds, run --timeout 2.5 takes fractions" in str(err.value)


def test_run_help_says_how_timeout_is_written(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "90s, 10m, 1h, 1d" in help_text
    assert f"at most {loader.MAX_TIMEOUT_S} (1 day" in help_text


def test_a_timeout_with_a_unit_on_the_command_line_lists(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "a.yaml"
    scenario.write_text(SCENARIO)
    assert cli.main(["run", str(scenario), "--list", "--timeout", "90s"]) == 0
    assert "a.yaml" in capsys.readouterr().out


def test_a_multi_line_xfail_reason_is_one_line_of_the_text_report(tmp_path: Path) -> None:
    reason = "the old firmware\n  keeps its ITL\n\nuntil a reset\n"
    summary = _summary(xfail=reason)
    text = render_text(summary)
    verdict = [line for line in text.splitlines() if "(t.yaml:5)" in line]
    assert verdict == ["  XFAIL boots (t.yaml:5) [xfail: the old firmware keeps its ITL until a reset]"]
    assert not any(line.strip() in ("keeps its ITL", "until a reset") for line in text.splitlines())
    assert to_json(summary)["scenarios"][0]["expectations"][0]["xfail"] == reason  # whole
    junit = tmp_path / "out.xml"
    write_junit(summary, junit)
    skipped = ET.parse(junit).getroot().find(".//skipped")
    assert skipped is not None and skipped.get("message") == f"expected failure: {reason}"
