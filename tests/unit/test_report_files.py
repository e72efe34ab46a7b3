"""Report files are whole or absent: an interrupt mid-write keeps the previous report (atomic replace)."""
from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.scenario import reports
from phoneemu.scenario.results import ExpectationResult, RunSummary, ScenarioResult


def _summary() -> RunSummary:
    exps = [ExpectationResult(where=f"s.yaml:{i}", label=f"e{i}", xfail=None) for i in range(3)]
    return RunSummary(scenarios=[ScenarioResult(name="s", path="s.yaml", reproduces="x", expectations=exps)])


def test_an_interrupted_junit_write_leaves_the_previous_report_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "junit.xml"
    reports.write_junit(_summary(), out)
    before = out.read_bytes()
    calls = []
    real = reports._junit_case

    def interrupted(*args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reports, "_junit_case", interrupted)
    with pytest.raises(KeyboardInterrupt):
        reports.write_junit(_summary(), out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["junit.xml"]


def test_a_report_to_a_device_is_written_in_place(tmp_path: Path) -> None:
    reports.write_json(_summary(), Path("/dev/null"))
    assert Path("/dev/null").exists() and not Path("/dev/null").is_file()
