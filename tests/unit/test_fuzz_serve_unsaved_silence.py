"""``--serve``: a silence whose folder could not be written (a full disk alike: ``crashes`` is a file here)
is said not saved, and the way to go on serves its mutant again (phoneemu.fuzz.targets
``ServeSession.unsaved`` / ``resume_index``; phoneemu.commands._fuzz_serve ``_serve_end``): the line names
it, summary.json's ``next_run_index`` is its run index, its entry ``saved: false``, ``dir: null``. Was:
"the findings so far are saved (to go on: ... --run-index <past it>)", and summary.json named a folder that
was never made: the device's crash was lost."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import pytest

from phoneemu.commands._fuzz_serve import _serve_end
from phoneemu.fuzz.targets import ServeSession


def _session(out: Path, start_index: int) -> ServeSession:
    def make(index: int, _name: str) -> tuple[bytes, dict[str, object]]:
        return f"mutant {index}".encode(), {}

    return ServeSession(fmt="itl", make=make, seed=7, out=out, runs=5, start_index=start_index,
                        silent_after=0.01)


def _args(out: Path, run_index: int) -> argparse.Namespace:
    return argparse.Namespace(fmt="itl", seed=7, run_index=run_index, out=out, silent_after=0.01, quiet=False,
                              command="fuzz")


def _silent_after_two_mutants_unsaved(out: Path) -> ServeSession:
    """Mutants 40 and 41 served, the device silent after 41, whose folder cannot be made."""
    session = _session(out, 40)
    assert session.get("ITLFile.tlv") == b"mutant 40"
    assert session.get("ITLFile.tlv") == b"mutant 41"
    (out / "crashes").write_bytes(b"")  # no silence's folder can be made in it
    assert asyncio.run(session.watch(time_limit=30)) is False  # ended by the error, at once
    return session


def test_the_session_goes_on_at_the_unsaved_silence(tmp_path: Path) -> None:
    session = _silent_after_two_mutants_unsaved(tmp_path)
    assert session.error is not None and session.served == 2
    assert session.unsaved == [41]
    assert session.resume_index == 41  # was: 42 (run_index + served), past it


def _silence_now(session: ServeSession) -> None:
    """The device silent since the last mutant (its silence saved)."""
    assert session.check_silence(now=time.monotonic() + 1) is not None


def test_a_saved_silence_is_gone_past(tmp_path: Path) -> None:
    session = _session(tmp_path, 40)
    session.get("ITLFile.tlv")
    _silence_now(session)
    assert [f["index"] for f in session.silences] == [40] and session.unsaved == []
    assert (tmp_path / "crashes" / "silent-000040" / "info.json").exists()
    assert session.resume_index == 41


def test_the_end_names_the_unsaved_silence_and_serves_it_again(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    session = _silent_after_two_mutants_unsaved(tmp_path)
    assert _serve_end(_args(tmp_path, 40), session, interrupted=False) == 2
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if "serving stopped" in x]
    assert "findings so far are saved" not in line, line
    assert line.endswith("serving stopped after 2 mutant(s); the silence after mutant 41 was not saved (to "
                         "go on, serving its mutant again: --seed 7 --run-index 41)"), line
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["first_run_index"], summary["next_run_index"]) == (40, 41)
    (silence,) = summary["silences"]
    assert (silence["run_index"], silence["dir"], silence["saved"]) == (41, None, False)


def test_an_interrupted_session_says_where_to_go_on(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    session = _session(tmp_path, 40)
    session.get("ITLFile.tlv")
    _silence_now(session)
    session.get("ITLFile.tlv")
    assert _serve_end(_args(tmp_path, 40), session, interrupted=True) == 130
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "interrupted after" in x]
    assert line.endswith("interrupted after serving 2 mutant(s); the findings so far are saved (to go on: "
                         "--seed 7 --run-index 42)"), line
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["next_run_index"] == 42
    (silence,) = summary["silences"]
    assert silence["saved"] is True and silence["dir"] == str(tmp_path / "crashes" / "silent-000040")
