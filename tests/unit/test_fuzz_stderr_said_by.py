"""Every line ``phoneemu fuzz`` writes on stderr starts with the command as typed, a message's further lines
indented (:mod:`phoneemu.cli` rules, ours). Before, fuzz was left out of that convention: its plain progress
lines said ``fuzz itl: ...``, ``--serve``'s lines ``fuzz itl: serving mutants ...``, and ``--replay`` /
``--regenerate`` printed a finding's traceback raw (``Traceback (most recent call last):`` at the start
of a line)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.engine import FuzzConfig, fuzz
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.targets import PythonTarget
from tests.fuzz_helpers import clean

FUZZ = "phoneemu fuzz"


def _said_by_fuzz(err: str) -> None:
    lines = err.splitlines()
    assert lines, "nothing on stderr"
    for line in lines:
        assert line.startswith(f"{FUZZ}: ") or line.startswith("  "), line


def _crashy(out: Path, *more: str) -> int:
    return main(["fuzz", "--format", "itl", "--target", "tests.fuzz_helpers:crashy", "--seed", "1", *more,
                 "--out", str(out)])


def test_a_runs_progress_and_its_findings_replayed_or_rebuilt(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fz"
    assert _crashy(out, "--runs", "20", "--no-minimize") == 1
    err = capsys.readouterr().err
    assert f"{FUZZ}: itl: 20 execs, " in err  # the progress line (stderr is not a terminal here)
    _said_by_fuzz(err)

    finding = json.loads((out / "summary.json").read_text())["findings"][0]
    info = json.loads((Path(finding["dir"]) / "info.json").read_text())
    assert main(["fuzz", "--format", "itl", "--target", "tests.fuzz_helpers:crashy",
                 "--replay", str(Path(finding["dir"]) / "minimized.bin")]) == 1
    err = capsys.readouterr().err
    assert "\n  Traceback (most recent call last):" in err and "IndexError" in err
    _said_by_fuzz(err)

    again = tmp_path / "again"
    assert main(["fuzz", "--format", "itl", "--target", "tests.fuzz_helpers:crashy", "--seed", "1",
                 "--run-index", str(info["run_index"]), "--no-minimize", "--regenerate", str(again)]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last):" in err
    _said_by_fuzz(err)


def test_serves_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Loopback, a port of the system's choosing, no device asking: served nothing, then the time is up."""
    assert main(["fuzz", "--format", "itl", "--serve", "--host", "127.0.0.1", "--port", "0",
                 "--runs", "1", "--time", "0.2", "--out", str(tmp_path / "fz")]) == 0
    err = capsys.readouterr().err
    assert f"{FUZZ}: itl: serving mutants over TFTP on 127.0.0.1:" in err
    _said_by_fuzz(err)


def test_the_line_redrawn_on_a_terminal_is_as_it_was() -> None:
    """(``phoneemu.cli`` rules: a live progress line redrawn on a terminal keeps its form.)"""
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    config = FuzzConfig(fmt="itl", runs=3, progress=tty, said_by=FUZZ)
    fuzz(config, PythonTarget(clean, name="clean"), Mutator(build_corpus("itl")))
    assert tty.getvalue().startswith("\rfuzz itl: 3 execs, ") and FUZZ not in tty.getvalue()
