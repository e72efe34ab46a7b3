"""A finding's ``reproduce`` and ``regenerate`` commands (info.json) and summary.json's ``dir`` name
absolute paths, as ``--serve``'s do: with a relative ``--out`` they kept ``fz/crashes/...`` as typed
and worked only from the folder the fuzzer ran in."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from phoneemu.cli import main


def _command(info: dict[str, str], key: str) -> list[str]:
    argv = shlex.split(info[key])
    assert argv[:2] == ["phoneemu", "fuzz"]
    return argv[1:]


def test_the_commands_of_a_finding_work_from_another_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "here").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    rc = main(["fuzz", "--format", "sgn", "--target", "tests.fuzz_helpers:crashy", "--runs", "40",
               "--seed", "3", "--out", "fz", "-q"])
    assert rc == 1
    [entry] = json.loads(Path("fz", "summary.json").read_text())["findings"]
    crash = Path(entry["dir"])
    assert crash.is_absolute() and crash == (tmp_path / "here" / "fz" / "crashes" / crash.name).resolve()
    info = json.loads((crash / "info.json").read_text())
    monkeypatch.chdir(tmp_path / "elsewhere")
    capsys.readouterr()
    assert main(_command(info, "reproduce")) == 1  # the crash, replayed: not "no such file"
    assert "IndexError" in capsys.readouterr().out
    assert main(_command(info, "regenerate")) == 1
    assert (crash / "regenerated" / "input.bin").read_bytes() == (crash / "input.bin").read_bytes()
    regenerated = json.loads((crash / "regenerated" / "info.json").read_text())
    assert Path(_command(regenerated, "regenerate")[-1]) == crash / "regenerated"
    assert not list((tmp_path / "elsewhere").iterdir())  # nothing written where the commands ran
