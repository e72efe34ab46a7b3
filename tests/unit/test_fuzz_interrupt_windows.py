"""``phoneemu fuzz`` interrupted (Ctrl-C, or SIGTERM: the same) in the two windows left open exited 130
without summary.json: just after ``--out`` was made (before the run's Ctrl-C handling began), and while the
summary was printed or summary.json written (after it ended). From ``--out`` made to summary.json written,
an interrupt now leaves a whole summary.json (the write itself holds the signal back until it is done)."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.fuzz.engine import FuzzReport
from tests.helpers import ctrl_c, ctrl_c_before_fuzz_summary_json, ctrl_c_making_fuzz_out, fuzz_summary


def _fuzz(out: Path) -> int:
    return main(["fuzz", "--format", "itl", "--target", "tests.fuzz_helpers:crashy", "--runs", "20",
                 "--seed", "1", "--out", str(out), "-q"])


def test_an_interrupt_just_after_out_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    ctrl_c_making_fuzz_out(monkeypatch, made=True)
    out = tmp_path / "fz"
    assert _fuzz(out) == 130
    summary = fuzz_summary(out)
    assert summary["interrupted"] is True and summary["execs"] == 0
    assert summary["interrupted_while"] == "making the output folder"
    err = capsys.readouterr().err
    assert "phoneemu fuzz: interrupted while making the output folder, before any input was run" in err


def test_an_interrupt_before_out_exists_has_nowhere_to_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    ctrl_c_making_fuzz_out(monkeypatch, made=False)
    out = tmp_path / "fz"
    assert _fuzz(out) == 130
    assert not out.exists()
    assert capsys.readouterr().err.splitlines()[-1] == "phoneemu fuzz: interrupted"


def test_an_interrupt_while_the_summary_is_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    said = FuzzReport.summary

    def ctrl_c_then_summary(self: FuzzReport) -> str:
        ctrl_c()
        return said(self)

    monkeypatch.setattr(FuzzReport, "summary", ctrl_c_then_summary)
    out = tmp_path / "fz"
    assert _fuzz(out) == 130
    summary = fuzz_summary(out)  # the run had ended: its summary, as it was
    assert summary["interrupted"] is False and summary["execs"] == 20 and summary["findings"]


def test_an_interrupt_while_summary_json_is_written_is_held_until_it_is_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = ctrl_c_before_fuzz_summary_json(monkeypatch)
    out = tmp_path / "fz"
    assert _fuzz(out) == 130
    assert fuzz_summary(out)["execs"] == 20
    assert seen == ["signalled"]  # the signal came before the write, and was held back until it was done
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temporary file left
