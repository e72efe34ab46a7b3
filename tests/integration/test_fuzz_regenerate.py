"""``info.json``'s ``regenerate`` command rebuilds a finding's input into ``crashes/<id>/regenerated/``
itself (README, Fuzzing your own parser): ``input.bin`` there, and as the finding reproduces, its
``minimized.bin`` and ``info.json`` beside it — was ``regenerated/crashes/<id>/input.bin`` and a
``regenerated/summary.json`` (the command was a whole fuzz run with ``--out regenerated``).

The fuzz runs that make the findings run in this process (what is tested is what they print and write,
not their process); the ``regenerate`` commands they print run as printed, by a shell."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.engine import input_for
from phoneemu.fuzz.mutators import Mutator
from tests.fuzz_helpers import run_line, split_line

PARSER = '''\
def parse(data: bytes) -> None:
    if len(data) > 3 and data[3] & 1:
        raise KeyError("the bug")
    raise ValueError("rejected")
'''

FINDING_FILES = {"input.bin", "minimized.bin", "info.json"}


@pytest.fixture
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``tmp_path`` made the current folder, the import path as ``python -m phoneemu`` run from there has it
    (a fuzz run puts the folder first), given back after, and no ``myparser`` module left imported."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != ""])
    try:
        yield tmp_path
    finally:
        sys.modules.pop("myparser", None)


def _regenerate(crash: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the ``regenerate`` command of ``crash/info.json`` as written, by a shell, from ``cwd``."""
    line = json.loads((crash / "info.json").read_text())["regenerate"]
    assert split_line(line)[1][:2] == ["phoneemu", "fuzz"]
    return run_line(line, cwd=cwd)


def test_regenerate_writes_into_the_regenerated_folder_itself(in_tmp_path: Path) -> None:
    """The README's own walk-through: a user's parser in the current directory, --reject-exc, a relative
    --out; the regenerate command run from there."""
    tmp_path = in_tmp_path
    (tmp_path / "myparser.py").write_text(PARSER)
    assert main(["fuzz", "--format", "itl", "--target", "myparser:parse", "--reject-exc", "ValueError",
                 "--runs", "40", "--seed", "1", "--out", "fz", "-q"]) == 1
    (crash,) = (tmp_path / "fz" / "crashes").iterdir()
    again = _regenerate(crash, tmp_path)
    assert again.returncode == 1, again.stderr  # it still crashes
    regenerated = crash / "regenerated"
    assert {p.name for p in regenerated.iterdir()} == FINDING_FILES
    assert (regenerated / "input.bin").read_bytes() == (crash / "input.bin").read_bytes()
    assert (regenerated / "minimized.bin").read_bytes() == (crash / "minimized.bin").read_bytes()
    info, first = (json.loads((d / "info.json").read_text()) for d in (regenerated, crash))
    assert (info["signature"], info["run_index"], info["seed"]) == \
        (first["signature"], first["run_index"], first["seed"])
    where = (tmp_path / "fz" / "crashes" / crash.name / "regenerated").resolve()  # absolute: typed --out fz
    assert json.loads((crash / "info.json").read_text())["regenerate"].endswith(f"--regenerate {where}")
    assert info["reproduce"].endswith(f"--replay {where / 'minimized.bin'}")
    assert f"rebuilt into {where / 'input.bin'}" in again.stdout and "KeyError" in again.stdout, again.stdout
    # its own regenerate command rebuilds into the same folder, not regenerated/regenerated/
    assert _regenerate(regenerated, tmp_path).returncode == 1
    assert {p.name for p in regenerated.iterdir()} == FINDING_FILES


def test_regenerate_of_a_command_finding(in_tmp_path: Path) -> None:
    """``--target-cmd ... --crash-exit``: the same, and no ``.work`` folder left in regenerated/."""
    tmp_path = in_tmp_path
    script = tmp_path / "itlparse.sh"  # sh, not Python: each of the 20 runs starts it
    script.write_text('b=$(od -An -tu1 -j3 -N1 "$1" 2>/dev/null)\n'  # byte 3 odd: the crash (exit 3)
                      '[ $(( ${b:-0} % 2 )) -eq 1 ] && exit 3\nexit 1\n')
    cmd = f"/bin/sh {shlex.quote(str(script))} {{}}"
    out = tmp_path / "fz"
    assert main(["fuzz", "--format", "itl", "--target-cmd", cmd, "--crash-exit", "3", "--runs", "10",
                 "--no-minimize", "--out", str(out), "-q"]) == 1
    (crash,) = (out / "crashes").iterdir()
    argv = shlex.split(json.loads((crash / "info.json").read_text())["regenerate"])
    assert argv[argv.index("--regenerate") + 1] == str(crash / "regenerated")
    assert argv[0] == "phoneemu"  # no cd: the script is named by its absolute path
    assert main([*argv[1:], "--no-minimize"]) == 1
    assert {p.name for p in (crash / "regenerated").iterdir()} == FINDING_FILES
    assert (crash / "regenerated" / "input.bin").read_bytes() == (crash / "input.bin").read_bytes()


def test_an_input_that_no_longer_crashes_is_still_rebuilt(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The target fixed meanwhile: the input is rebuilt all the same (input.bin), exit 0, and no
    finding files beside it."""
    into = tmp_path / "regen"
    assert main(["fuzz", "--format", "ctl", "--target", "tests.fuzz_helpers:clean", "--seed", "4",
                 "--run-index", "7", "--regenerate", str(into)]) == 0
    assert {p.name for p in into.iterdir()} == {"input.bin"}
    assert (into / "input.bin").read_bytes() == input_for(Mutator(build_corpus("ctl")), 4, 7).data
    out = capsys.readouterr().out
    assert f"input 7 of seed 4 rebuilt into {into / 'input.bin'}" in out and "not a finding" in out, out


@pytest.mark.parametrize("extra", [["--out", "o"], ["--runs", "1"], ["--time", "1"], ["--replay", "x"],
                                   ["--export-corpus", "e"], ["--serve"]])
def test_regenerate_refuses_the_options_of_a_fuzz_run(tmp_path: Path, extra: list[str],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    target = [] if "--serve" in extra else ["--target", "tests.fuzz_helpers:clean"]
    argv = ["fuzz", "--format", "itl", *target, "--regenerate", str(tmp_path / "r"),
            *[str(tmp_path / a) if a in ("o", "x", "e") else a for a in extra]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--regenerate" in err, err
    assert not (tmp_path / "r").exists()
