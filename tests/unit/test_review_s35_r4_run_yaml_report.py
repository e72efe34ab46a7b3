"""Review S35 R4 of c19c259 (``phoneemu run`` refuses a --junit/--json path that is an existing YAML file).

Only an existing file was refused, so ``run a.yaml --junit out.yaml`` ran and wrote its report as
out.yaml, and the same command again was refused (exit 2: "is a YAML file, a scenario's") — by the file
the first run wrote; ``run scenarios/ --json scenarios/out.yaml`` left a report the next ``run scenarios/``
read as a scenario. Now a report path named ``*.yaml``/``*.yml`` (any case), or a link to one, is refused
whether it exists or not, before anything runs, and the message says what to name it instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.run_helpers import exit_code, scenario_in_cwd


@pytest.fixture
def scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scenario a.yaml in the cwd (``tmp_path``)."""
    return scenario_in_cwd(tmp_path, monkeypatch, mac_prefix="0F000007B4")


@pytest.mark.parametrize(("option", "path", "instead"), [
    ("--junit", "out.yaml", ".xml"),
    ("--json", "OUT.YML", ".json"),
    ("--junit", "link.xml", ".xml"),  # a link to a YAML name that is not there yet
])
def test_a_report_named_yaml_is_refused_every_time_not_only_once_it_exists(
        scenario: Path, capsys: pytest.CaptureFixture[str], option: str, path: str, instead: str) -> None:
    """Exit 2 before anything runs, nothing written, the same answer the second time (was: exit 0 and the
    report written the first time, exit 2 "is a YAML file, a scenario's" the next)."""
    Path("link.xml").symlink_to("gone.yaml")
    for _ in range(2):
        assert exit_code(["run", "a.yaml", option, path]) == 2
        err = capsys.readouterr().err
        assert f"{option} {path}: a *.yaml/*.yml name is a scenario file's, never a report's" in err, err
        assert f"name it *{instead}" in err, err
        assert "PASS" not in err
        assert sorted(p.name for p in scenario.parent.iterdir()) == ["a.yaml", "link.xml"]


def test_a_usage_error_writes_no_not_run_report_at_a_new_yaml_path(
        scenario: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``run a.yaml --junit out.yml --bogus``: argparse's exit 2; no out.yml made, and said (was: the
    not-run report written there, which the next run refused as a scenario's file)."""
    assert exit_code(["run", "a.yaml", "--junit", "out.yml", "--bogus"]) == 2
    assert not Path("out.yml").exists()
    assert "--junit out.yml: not written: a *.yaml/*.yml name" in capsys.readouterr().err


def test_a_folder_named_yaml_is_told_a_folder(scenario: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder is refused as a folder (check_writable's message), not as a YAML name."""
    Path("d.yaml").mkdir()
    assert exit_code(["run", "a.yaml", "--junit", "d.yaml"]) == 2
    assert "--junit d.yaml: is a folder, not a file" in capsys.readouterr().err


def test_other_report_names_are_written(scenario: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``out.xml`` and ``out.yaml.json`` (the last suffix counts) are reports: written."""
    assert exit_code(["run", "a.yaml", "--junit", "out.xml", "--json", "out.yaml.json"]) == 0
    assert Path("out.xml").read_text().startswith("<?xml")
    assert Path("out.yaml.json").read_text().startswith("{")
    capsys.readouterr()
