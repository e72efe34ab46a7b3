"""``phoneemu fuzz`` interrupted (Ctrl-C, or SIGTERM: the same) in the two windows left open exited 130
without summary.json: just after ``--out`` was made (before the run's Ctrl-C handling began), and while the
summary was printed or summary.json written (after it ended). From ``--out`` made to summary.json written,
an interrupt now leaves a whole summary.json (the write itself holds the signal back until it is done)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from phoneemu import files
from phoneemu.cli import main
from phoneemu.commands import fuzz as fuzz_cmd
from phoneemu.fuzz.engine import FuzzReport


def _fuzz(out: Path) -> int:
    return main(["fuzz", "--format", "itl", "--target", "tests.fuzz_helpers:crashy", "--runs", "20",
                 "--seed", "1", "--out", str(out), "-q"])


def _summary(out: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return summary


def _ctrl_c() -> None:
    """A real SIGINT, met by the handler in force where it lands (as a Ctrl-C or a SIGTERM is)."""
    signal.raise_signal(signal.SIGINT)


def test_an_interrupt_just_after_out_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    made = fuzz_cmd._make_folder

    def made_then_ctrl_c(folder: Path, option: str) -> None:
        made(folder, option)
        _ctrl_c()

    monkeypatch.setattr(fuzz_cmd, "_make_folder", made_then_ctrl_c)
    out = tmp_path / "fz"
    assert _fuzz(out) == 130
    summary = _summary(out)
    assert summary["interrupted"] is True and summary["execs"] == 0
    assert summary["interrupted_while"] == "making the output folder"
    err = capsys.readouterr().err
    assert "phoneemu fuzz: interrupted while making the output folder, before any input was run" in err


def test_an_interrupt_before_out_exists_has_nowhere_to_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    def ctrl_c_first(_folder: Path, _option: str) -> None:
        _ctrl_c()

    monkeypatch.setattr(fuzz_cmd, "_make_folder", ctrl_c_first)
    out = tmp_path / "fz"
    assert _fuzz(out) == 130
    assert not out.exists()
    assert capsys.readouterr().err.splitlines()[-1] == "phoneemu fuzz: interrupted"


def test_an_interrupt_while_the_summary_is_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    said = FuzzReport.summary

    def ctrl_c_then_summary(self: FuzzReport) -> str:
        _ctrl_c()
        return said(self)

    monkeypatch.setattr(FuzzReport, "summary", ctrl_c_then_summary)
    out = tmp_path / "fz"
    assert _fuzz(out) == 130
    summary = _summary(out)  # the run had ended: its summary, as it was
    assert summary["interrupted"] is False and summary["execs"] == 20 and summary["findings"]


def test_an_interrupt_while_summary_json_is_written_is_held_until_it_is_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = files.atomic_write
    seen: list[str] = []

    def ctrl_c_midway(path: Path | str, data: bytes, **options: Any) -> None:
        if Path(path).name == "summary.json":
            _ctrl_c()
            seen.append("signalled")
        written(path, data, **options)

    monkeypatch.setattr(files, "atomic_write", ctrl_c_midway)
    out = tmp_path / "fz"
    assert _fuzz(out) == 130
    assert _summary(out)["execs"] == 20
    assert seen == ["signalled"]  # the signal came before the write, and was held back until it was done
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temporary file left
