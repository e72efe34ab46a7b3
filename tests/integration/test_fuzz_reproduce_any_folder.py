"""info.json's ``reproduce`` and ``regenerate`` commands work from any folder, as printed, also for a
target found through the fuzzer's working folder (phoneemu.fuzz.reproduce): a ``--target`` module of that
folder, a ``--target-cmd`` program given as ``./itlparse`` — they begin ``cd <that folder> && `` (was:
"No module named 'hangy'", or no such program, from another folder). A target found otherwise gets no
``cd``. The fuzzer's folder has a space and a quote in its name: the line stays one POSIX shell line.

The fuzz run that makes the finding runs in this process (its folder the current one, importable as
``python -m`` makes it: what is tested is where its target was found, not its process); the commands it
prints run as printed, by a shell, from another folder.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.fuzz.reproduce import command_in_folder, module_in_folder, target_modules
from tests.fuzz_helpers import ROOT, run_line, split_line

HANGY = '''\
def parse(data: bytes) -> None:
    if len(data) > 3 and data[3] & 1:
        raise KeyError("the bug")
    raise ValueError("rejected")
'''

#: a shell script, not Python: minimising the finding (its regenerate command does) runs it a few hundred
#: times, and a Python start-up each time was most of this module's time
ITLPARSE = '''\
#!/bin/sh
# the crash (exit 3) when byte 3 of the file is odd; rejected (exit 1) otherwise
b=$(od -An -tu1 -j3 -N1 "$1" 2>/dev/null)
[ $(( ${b:-0} % 2 )) -eq 1 ] && exit 3
exit 1
'''


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    """The fuzzer's folder (``fuzz here's``), the current one, and another one. The import path as
    ``python -m phoneemu`` run from the fuzzer's folder has it (the run puts that folder first), given back
    after, and no ``hangy`` module left imported."""
    here, elsewhere = tmp_path / "fuzz here's", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != ""])
    try:
        yield here.resolve(), elsewhere
    finally:
        sys.modules.pop("hangy", None)


def _fuzz(*args: str, cwd: Path) -> Path:
    """Run ``phoneemu fuzz ARGS --out fz`` from ``cwd`` (the current folder, :func:`folders`), in this
    process: the one finding's folder."""
    assert Path.cwd().resolve() == cwd
    assert main(["fuzz", "--format", "sgn", *args, "--runs", "10", "--seed", "1", "--out", "fz", "-q"]) == 1
    (crash,) = (cwd / "fz" / "crashes").iterdir()
    return crash


def _check_from_elsewhere(crash: Path, elsewhere: Path, here: Path, signature: str) -> None:
    info = json.loads((crash / "info.json").read_text())
    for key in ("reproduce", "regenerate"):
        assert split_line(info[key])[0] == here, info[key]
        r = run_line(info[key], cwd=elsewhere)
        assert r.returncode == 1, r.stderr  # the finding, again: not "No module named" (exit 2)
        assert signature in r.stdout, r.stdout
    assert (crash / "regenerated" / "input.bin").read_bytes() == (crash / "input.bin").read_bytes()
    assert not list(elsewhere.iterdir())  # nothing written where the commands ran


def test_a_module_of_the_fuzzers_folder_reproduces_from_another(folders: tuple[Path, Path]) -> None:
    here, elsewhere = folders
    (here / "hangy.py").write_text(HANGY)
    crash = _fuzz("--target", "hangy:parse", "--reject-exc", "ValueError", cwd=here)
    _check_from_elsewhere(crash, elsewhere, here, "KeyError at hangy.py:3")


def test_a_relative_command_reproduces_from_another_folder(folders: tuple[Path, Path]) -> None:
    here, elsewhere = folders
    script = here / "itlparse"
    script.write_text(ITLPARSE)
    script.chmod(0o755)
    # --no-minimize: the run's minimising (~300 runs of the script, ~1.5 s) is not what is tested here; the
    # regenerate command, run from elsewhere, still minimises (its info.json's commands do not carry it)
    crash = _fuzz("--target-cmd", "./itlparse {}", "--crash-exit", "3", "--no-minimize", cwd=here)
    _check_from_elsewhere(crash, elsewhere, here, "exit status 3")


def test_a_target_found_otherwise_gets_no_cd(folders: tuple[Path, Path]) -> None:
    here, _ = folders
    crash = _fuzz("--target", "tests.fuzz_helpers:crashy", cwd=here)  # found through the import path
    info = json.loads((crash / "info.json").read_text())
    assert split_line(info["reproduce"])[0] is None and split_line(info["regenerate"])[0] is None


def test_what_counts_as_found_through_the_folder(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    assert command_in_folder("./itlparse {}", tmp_path)
    assert command_in_folder("bin/itlparse {}", tmp_path)
    assert command_in_folder("itlparse --keys keys {}", tmp_path)
    assert command_in_folder("itlparse --keys=keys {}", tmp_path)
    assert not command_in_folder(f"{sys.executable} -c pass {{}}", tmp_path)
    assert not command_in_folder("sh -c 'exit 3' {}", tmp_path)
    assert not command_in_folder("itlparse --keys missing {}", tmp_path)
    assert not module_in_folder("json", tmp_path) and not module_in_folder("sys", tmp_path)
    assert module_in_folder("tests.fuzz_helpers", ROOT)
    assert not module_in_folder("tests.fuzz_helpers", tmp_path)
    assert target_modules("phoneemu", "ValueError, mypkg.errors:ParseError,other.Bad") == \
        ["builtins", "mypkg.errors", "other"]
    assert target_modules("mypkg.parser:parse", None) == ["mypkg.parser"]


def test_a_module_found_through_a_subfolder_of_the_working_folder_is_the_folders(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``PYTHONPATH=src`` from the fuzzer's folder: the module's import root is ``folder/src`` — found
    through the folder too, so the commands begin with its ``cd`` (was: none, "No module named ...")."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "subparser_r6.py").write_text("def parse(data):\n    return data\n")
    monkeypatch.syspath_prepend(str(src))
    importlib.import_module("subparser_r6")
    assert module_in_folder("subparser_r6", tmp_path)
    assert not module_in_folder("subparser_r6", tmp_path / "elsewhere")
