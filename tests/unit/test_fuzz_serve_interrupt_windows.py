"""``phoneemu fuzz --serve`` interrupted (Ctrl-C, or SIGTERM: the same) in the two windows the in-process
loop had closed (tests/unit/test_fuzz_interrupt_windows.py) exited 130 without summary.json: just after
``--out`` was made (before the Ctrl-C handling began), and while the summary line was printed (before
summary.json was written). From ``--out`` made to summary.json written, an interrupt now leaves a whole
summary.json (the write itself holds the signal back until it is done). Loopback only, nothing served."""

from __future__ import annotations

import builtins
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from phoneemu import files
from phoneemu.cli import main
from phoneemu.commands import fuzz as fuzz_cmd


def _serve(out: Path) -> int:
    return main(["fuzz", "--format", "itl", "--serve", "--host", "127.0.0.1", "--port", "0", "--runs", "1",
                 "--time", "0.2", "--out", str(out)])


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
    assert _serve(out) == 130
    summary = _summary(out)
    assert summary["interrupted"] is True and summary["served"] == 0 and summary["requests"] == 0
    captured = capsys.readouterr()
    assert "phoneemu fuzz: interrupted while making the output folder, before any mutant was served" \
        in captured.err
    assert "itl: served 0 mutant(s) to 0 request(s); transfer outcomes: none" in captured.out


def test_an_interrupt_before_out_exists_has_nowhere_to_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    def ctrl_c_first(_folder: Path, _option: str) -> None:
        _ctrl_c()

    monkeypatch.setattr(fuzz_cmd, "_make_folder", ctrl_c_first)
    out = tmp_path / "fz"
    assert _serve(out) == 130
    assert not out.exists()
    assert capsys.readouterr().err.splitlines()[-1] == "phoneemu fuzz: interrupted"


def test_an_interrupt_while_the_summary_line_is_printed(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    said = builtins.print

    def ctrl_c_then_print(*values: object, **options: Any) -> None:
        if values and "served" in str(values[0]):
            _ctrl_c()
        said(*values, **options)

    monkeypatch.setattr(fuzz_cmd, "print", ctrl_c_then_print, raising=False)
    out = tmp_path / "fz"
    assert _serve(out) == 130
    summary = _summary(out)  # the serving had ended: its summary, as it was
    assert summary["interrupted"] is False and summary["served"] == 0


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
    assert _serve(out) == 130
    assert _summary(out)["interrupted"] is False
    assert seen == ["signalled"]  # the signal came before the write, and was held back until it was done
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temporary file left
