"""``--serve`` and a file it cannot write (a full disk; here a folder standing where the file goes): the
session ends (phoneemu.fuzz.targets ``ServeSession.error``, naming the file), the mutant not recorded is not
served nor counted, and the end says so, summary.json with ``error``, exit 2 (phoneemu.commands._fuzz_serve
``_serve_end``). Was: a traceback on stderr for each request (the TFTP server's provider failed), each using
up an index — counted as served, never sent, its copy missing — and the run went on to ``--time``."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import pytest

from phoneemu.commands._fuzz_serve import _serve_end
from phoneemu.fuzz.targets import ServeSession


def _session(out: Path, **options: object) -> ServeSession:
    def make(index: int, _name: str) -> tuple[bytes, dict[str, object]]:
        return f"mutant {index}".encode(), {}

    return ServeSession(fmt="itl", make=make, seed=7, out=out, runs=5, **options)  # type: ignore[arg-type]


def test_a_mutant_whose_copy_cannot_be_written_is_not_served_and_ends_the_session(tmp_path: Path) -> None:
    session = _session(tmp_path)
    assert session.get("ITLFile.tlv") == b"mutant 0"
    blocked = tmp_path / "served" / "000001-ITLFile.tlv"
    blocked.mkdir()  # the copy of mutant 1 cannot be put there
    assert session.get("ITLFile.tlv") is None
    assert session.error is not None and session.error.startswith(f"{blocked}: ")
    assert session.served == 1 and session.next_index == 1
    blocked.rmdir()
    assert session.get("ITLFile.tlv") is None  # ended: nothing more served, unrecorded or not
    assert asyncio.run(session.watch(time_limit=30)) is False  # at once, not at the time limit
    served = [json.loads(x) for x in session.log_path.read_text().splitlines()]
    assert [e["index"] for e in served if e["event"] == "served"] == [0]


def test_a_silence_whose_folder_cannot_be_written_ends_the_session(tmp_path: Path) -> None:
    session = _session(tmp_path, silent_after=0.01)
    assert session.get("ITLFile.tlv") == b"mutant 0"
    (tmp_path / "crashes").write_bytes(b"")  # its folder cannot be made
    assert asyncio.run(session.watch(time_limit=30)) is False
    assert session.error is not None and str(tmp_path / "crashes") in session.error
    assert [f["index"] for f in session.silences] == [0]  # counted all the same


def _args(out: Path) -> argparse.Namespace:
    return argparse.Namespace(fmt="itl", seed=7, run_index=0, out=out, silent_after=None, quiet=False,
                              command="fuzz")


def test_the_end_of_a_session_ended_by_a_file_says_it_and_exits_2(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    session = _session(tmp_path)
    session.get("ITLFile.tlv")
    (tmp_path / "served" / "000001-ITLFile.tlv").mkdir()
    session.get("ITLFile.tlv")
    assert _serve_end(_args(tmp_path), session, interrupted=False) == 2
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["error"] == session.error and summary["served"] == 1
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if "serving stopped" in x]
    assert "000001-ITLFile.tlv" in line and "--seed 7 --run-index 1" in line, err
