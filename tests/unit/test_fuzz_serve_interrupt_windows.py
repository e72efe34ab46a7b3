"""``phoneemu fuzz --serve`` interrupted (Ctrl-C, or SIGTERM: the same) in the two windows the in-process
loop had closed (tests/unit/test_fuzz_interrupt_windows.py) exited 130 without summary.json: just after
``--out`` was made (before the Ctrl-C handling began), and while the summary line was printed (before
summary.json was written). From ``--out`` made to summary.json written, an interrupt now leaves a whole
summary.json (the write itself holds the signal back until it is done). Loopback only, nothing served."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.commands import _fuzz_serve as fuzz_serve_cmd
from tests.helpers import ctrl_c, ctrl_c_before_fuzz_summary_json, ctrl_c_making_fuzz_out, fuzz_summary


def _serve(out: Path) -> int:
    return main(["fuzz", "--format", "itl", "--serve", "--host", "127.0.0.1", "--port", "0", "--runs", "1",
                 "--time", "0.2", "--out", str(out)])


def test_an_interrupt_just_after_out_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    ctrl_c_making_fuzz_out(monkeypatch, made=True)
    out = tmp_path / "fz"
    assert _serve(out) == 130
    summary = fuzz_summary(out)
    assert summary["interrupted"] is True and summary["served"] == 0 and summary["requests"] == 0
    captured = capsys.readouterr()
    assert "phoneemu fuzz: interrupted while making the output folder, before any mutant was served" \
        in captured.err
    assert "itl: served 0 mutant(s) to 0 request(s); transfer outcomes: none" in captured.out


def test_an_interrupt_before_out_exists_has_nowhere_to_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    ctrl_c_making_fuzz_out(monkeypatch, made=False)
    out = tmp_path / "fz"
    assert _serve(out) == 130
    assert not out.exists()
    assert capsys.readouterr().err.splitlines()[-1] == "phoneemu fuzz: interrupted"


def test_an_interrupt_while_the_summary_line_is_printed(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    said = builtins.print

    def ctrl_c_then_print(*values: object, **options: Any) -> None:
        if values and "served" in str(values[0]):
            ctrl_c()
        said(*values, **options)

    monkeypatch.setattr(fuzz_serve_cmd, "print", ctrl_c_then_print, raising=False)
    out = tmp_path / "fz"
    assert _serve(out) == 130
    summary = fuzz_summary(out)  # the serving had ended: its summary, as it was
    assert summary["interrupted"] is False and summary["served"] == 0


def test_an_interrupt_while_summary_json_is_written_is_held_until_it_is_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = ctrl_c_before_fuzz_summary_json(monkeypatch)
    out = tmp_path / "fz"
    assert _serve(out) == 130
    assert fuzz_summary(out)["interrupted"] is False
    assert seen == ["signalled"]  # the signal came before the write, and was held back until it was done
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temporary file left
