"""Review S35 R2 of e1fb679 (a usage error of ``phoneemu run`` writes the not-run ``--junit``/``--json``
reports at the paths its arguments give).

A command line argparse refuses may give a scenario file as a report's value: ``run --junit $OUT a.yaml``
with ``OUT`` empty (unquoted) is ``run --junit a.yaml``, no PATH; the report was written over a.yaml, a file
the user named as a scenario (before e1fb679 nothing was written). Now an existing ``*.yaml``/``*.yml`` file
(or a link to one) is kept and said; a report path naming anything else is written as before.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phoneemu import cli
from tests.run_helpers import exit_code, scenario_in_cwd


@pytest.fixture
def scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scenario a.yaml in the cwd (``tmp_path``)."""
    return scenario_in_cwd(tmp_path, monkeypatch, mac_prefix="0F000007B0")


@pytest.mark.parametrize(("argv", "kept"), [
    (["run", "--junit", "a.yaml"], "--junit a.yaml"),  # run --junit $OUT a.yaml, OUT empty: PATH missing
    (["run", "--json", "a.yaml", "--timeout", "abc"], "--json a.yaml"),
    (["run", "--junit=a.yaml", "b.yaml", "-j", "x"], "--junit a.yaml"),
    (["run", "--ju", "link.xml", "--bogus"], "--junit link.xml"),  # a link to the scenario file
    (["run", "--junit", "A.YML", "--bogus"], "--junit A.YML"),
])
def test_a_usage_error_never_writes_a_report_over_a_yaml_file(
        scenario: Path, capsys: pytest.CaptureFixture[str], argv: list[str], kept: str) -> None:
    """Exit 2 and argparse's message as before; the YAML file as it was, and said."""
    (scenario.parent / "link.xml").symlink_to(scenario.name)
    (scenario.parent / "A.YML").write_text("steps: []\n")
    before = {p.name: p.read_bytes() for p in scenario.parent.iterdir()}
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in scenario.parent.iterdir()} == before
    said = "not written: a *.yaml/*.yml name is a scenario file's, never a report's"
    assert f"phoneemu run: {kept}: {said}\n" in err, err
    assert "phoneemu run: error: " in err.splitlines()[-1]


def test_the_other_report_is_still_written(scenario: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--junit a.yaml --json out.json``: out.json says nothing ran; a.yaml kept."""
    text = scenario.read_bytes()
    assert exit_code(["run", "--junit", "a.yaml", "--json", "out.json"]) == 2
    assert scenario.read_bytes() == text
    doc = json.loads(Path("out.json").read_text())
    assert doc["ran"] is False and doc["mistakes"][0]["problem"] == \
        "usage error: the following arguments are required: PATH"
    capsys.readouterr()


def test_a_new_yaml_path_is_not_written_another_existing_file_is(
        scenario: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A report named ``new.yaml`` (nothing there) is not written either (review R4: a YAML name is a
    scenario's, existing or not; was written, and the next run refused it as a scenario's file); an
    earlier report ``out.xml`` is."""
    Path("out.xml").write_text("an earlier run's report\n")
    assert exit_code(["run", "a.yaml", "--junit", "out.xml", "--json", "new.yaml", "-j", "x"]) == 2
    assert "usage error: argument -j/--jobs" in Path("out.xml").read_text()
    assert not Path("new.yaml").exists()
    assert "--json new.yaml: not written: a *.yaml/*.yml name" in capsys.readouterr().err


def test_one_parser_for_many_calls_remembers_no_earlier_arguments(
        scenario: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/parser_helpers.one_parser: one parser for many ``main`` calls; a usage error of a later call
    writes only the reports of its own arguments (``arguments_given`` is set by each parse of ``run``)."""
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda only=None: parser)
    assert exit_code(["run", "a.yaml", "--junit", "first.xml", "-j", "x"]) == 2
    Path("first.xml").unlink()  # written: this call's report
    for argv in (["inspect", "--bogus"], ["run", "--timeout", "abc"], ["--bogus", "run", "a.yaml"], ["run"]):
        assert exit_code(argv) == 2
    assert not Path("first.xml").exists()


@pytest.mark.parametrize("report", ["--junit", "--json"])
def test_a_run_that_parses_never_writes_its_report_over_a_yaml_file(
        scenario: Path, tmp_path: Path, report: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``run --junit $OUT a.yaml b.yaml`` with OUT empty parses (a.yaml the report, b.yaml the scenario): the
    report was written over a.yaml. Now refused (exit 2) before anything runs, a.yaml kept."""
    other = tmp_path / "b.yaml"
    other.write_text(scenario.read_text())
    before = scenario.read_bytes()
    assert exit_code(["run", report, "a.yaml", "b.yaml"]) == 2
    assert scenario.read_bytes() == before
    said = "a *.yaml/*.yml name is a scenario file's, never a report's"
    assert f"{report} a.yaml: {said}" in capsys.readouterr().err


def test_a_run_with_nothing_to_run_never_writes_its_not_run_report_over_a_yaml_file(
        scenario: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``run --junit a.yaml missing.yaml``: nothing runs (no such path) and the not-run report would have
    gone over a.yaml."""
    before = scenario.read_bytes()
    assert exit_code(["run", "--junit", "a.yaml", "missing.yaml"]) == 2
    assert scenario.read_bytes() == before
