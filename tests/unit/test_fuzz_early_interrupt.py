"""``phoneemu fuzz`` stopped by Ctrl-C or SIGTERM before its loop began (building the corpus, loading the
target) exited 130 without summary.json; now it writes one as an interrupted loop does: 0 execs,
``interrupted_while`` naming the step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.errors import DecodeError
from phoneemu.fuzz import corpus as corpus_mod
from phoneemu.fuzz import engine as engine_mod
from phoneemu.fuzz import targets as targets_mod


def _interrupt(*_args: Any, **_kwargs: Any) -> Any:
    raise KeyboardInterrupt  # what a Ctrl-C (or SIGTERM, phoneemu.interrupts) raises where it lands


def _fuzz(out: Path, *target: str) -> int:
    return main(["fuzz", "--format", "itl", *target, "--runs", "20", "--seed", "1", "--out", str(out), "-q"])


def _summary(out: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return summary


@pytest.mark.parametrize(("patched", "name", "step"), [
    (corpus_mod, "build_corpus", "building the corpus"),
    (targets_mod, "load_callable", "loading the target"),
    (engine_mod, "RunWatch", "starting the run"),
])
def test_an_interrupt_before_the_loop_writes_the_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str], patched: object,
                                                         name: str, step: str) -> None:
    monkeypatch.setattr(patched, name, _interrupt)
    out = tmp_path / "fz"
    assert _fuzz(out, "--target", "tests.fuzz_helpers:crashy") == 130
    summary = _summary(out)
    assert summary["interrupted"] is True and summary["interrupted_while"] == step
    assert (summary["format"], summary["seed"], summary["execs"]) == ("itl", 1, 0)
    assert summary["statuses"] == {} and summary["findings"] == []
    err = capsys.readouterr().err
    assert f"interrupted while {step}, before any input was run" in err


def test_the_step_of_a_run_that_ended_or_was_stopped_in_the_loop(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert _fuzz(tmp_path / "done", "--target", "phoneemu") == 0
    assert _summary(tmp_path / "done")["interrupted_while"] is None
    calls = 0

    def rejects_then_ctrl_c(data: bytes) -> None:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise KeyboardInterrupt
        raise DecodeError("rejected", fmt="toy", offset=0)

    monkeypatch.setattr(targets_mod, "load_callable", lambda _spec: rejects_then_ctrl_c)
    assert _fuzz(tmp_path / "stopped", "--target", "toy:parse") == 130
    summary = _summary(tmp_path / "stopped")
    assert summary["interrupted"] is True and summary["execs"] == 4
    assert summary["interrupted_while"] == "running inputs"
