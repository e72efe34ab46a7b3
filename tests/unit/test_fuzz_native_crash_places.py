"""A native crash of a supervised ``--target MODULE:FUNCTION`` is signed with where it died (phoneemu.fuzz.
supervise): ``killed by SIGSEGV at parser.py:4``, the target's innermost own frame of faulthandler's dump —
two native bugs in two places are two findings, the same place twice one finding and a duplicate (was: one
``killed by SIGSEGV`` finding for every segfault of a target, the other bugs counted as its duplicates).
Without a frame of the target's (no dump: SIGKILL, ``os._exit``) the signature is how it died alone."""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from phoneemu.cli import main
from phoneemu.fuzz import supervise
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.engine import input_for
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.supervise import SupervisedTarget
from phoneemu.fuzz.targets import PythonTarget, no_core_dumps

#: the user's parser: two native bugs in two functions, chosen by the input's first byte (``parse``) or, for
#: the fuzz loop's mutants, its length (``parse_mutant``); line numbers matter (the signatures name them)
PARSER = """\
import ctypes, os, signal

def read_tag(data):
    ctypes.string_at(0)  # line 4: SIGSEGV in C code called from here

def read_length(data):
    os.kill(os.getpid(), signal.SIGSEGV)  # line 7

def parse(data):
    if data[:1] == b"t":
        read_tag(data)
    if data[:1] == b"l":
        read_length(data)
    if data[:1] == b"k":
        os.kill(os.getpid(), signal.SIGKILL)  # no faulthandler dump
    if data[:1] == b"x":
        os._exit(3)

def parse_mutant(data):
    if len(data) % 5 == 1:
        read_tag(data)
    if len(data) % 5 == 2:
        read_length(data)
"""
RUNS = 30
SEED = 0


def _kind(data: bytes) -> str:
    """What ``parse_mutant`` does with ``data``."""
    return {1: "tag", 2: "length"}.get(len(data) % 5, "ok")


@pytest.fixture
def parser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The parser written as a module of its own, importable from the current directory."""
    name = f"native_places_{os.getpid()}"
    (tmp_path / f"{name}.py").write_text(PARSER)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        yield importlib.import_module(name)
    finally:
        sys.modules.pop(name, None)


def test_two_places_two_signatures_the_same_place_the_same_one(parser: ModuleType) -> None:
    name = parser.__name__
    t = SupervisedTarget(PythonTarget(parser.parse, name="places"))
    try:
        with no_core_dumps(), t.session():
            tag, length, tag_again = t.run(b"t1"), t.run(b"l1"), t.run(b"t2")  # a new child each time
            killed, exited = t.run(b"k"), t.run(b"x")
            assert t.run(b"okay").status == "ok"
    finally:
        t.close()
    assert (tag.status, tag.signature) == ("crash", f"killed by SIGSEGV at {name}.py:4"), tag.detail
    assert (length.status, length.signature) == ("crash", f"killed by SIGSEGV at {name}.py:7"), length.detail
    assert tag_again.signature == tag.signature  # stable: no address, no pid
    assert f'{name}.py", line 4 in read_tag' in tag.detail  # the frames still in the detail
    assert killed.signature == "killed by SIGKILL"  # no dump: how alone
    assert exited.signature == "exit status 3"


def test_the_fuzz_loop_keeps_one_finding_per_place(parser: ModuleType) -> None:
    name = parser.__name__
    mutator = Mutator(build_corpus("itl"), resign_ratio=0.25)  # as the command line's
    kinds = Counter(_kind(input_for(mutator, SEED, i).data) for i in range(RUNS))
    assert kinds["tag"] >= 2 and kinds["length"] >= 1  # the test sees a duplicate and both places
    rc = main(["fuzz", "--format", "itl", "--target", f"{name}:parse_mutant", "--runs", str(RUNS),
               "--seed", str(SEED), "--out", "fz", "--no-minimize", "-q"])
    assert rc == 1
    summary = json.loads(Path("fz", "summary.json").read_text())
    found = {f["signature"]: f["count"] for f in summary["findings"]}
    assert found == {f"killed by SIGSEGV at {name}.py:4": kinds["tag"],  # was: one, counting both
                     f"killed by SIGSEGV at {name}.py:7": kinds["length"]}
    folders = {Path(f["dir"]).name for f in summary["findings"]}
    assert len(folders) == 2 and all(len(d) == 12 and d.isalnum() for d in folders)


@pytest.mark.parametrize(("dump", "where"), [
    pytest.param('Fatal Python error: Segmentation fault\n\nStack (most recent call first):\n'
                  f'  File "{ctypes.__file__}", line 519 in string_at\n'
                  '  File "/src/parser.py", line 12 in read_tag\n'
                  f'  File "{supervise._FUZZ_DIR}targets.py", line 230 in _call\n'
                  '  File "/src/main.py", line 3 in <module>\n', "parser.py:12", id="user-line-below-stdlib"),
    pytest.param('Stack (most recent call first):\n  File "/src/parser.py", line 12 in read_tag\n'
                 '  File "/src/parser.py", line 123', "parser.py:12", id="cut-mid-line"),
    pytest.param('Stack (most recent call first):\n  File "/src/parser.py", line 12', None,
                 id="only-a-cut-line"),
    pytest.param('Fatal Python error: boom\n\nThread 0x00007f0 (most recent call first):\n'
                 '  File "/src/worker.py", line 5 in wait\n\n'
                 'Current thread 0x00007f1 (most recent call first):\n'
                 '  File "/src/parser.py", line ??? in read_tag\n', "parser.py:None", id="current-thread"),
    pytest.param('Stack (most recent call first):\n'
                 f'  File "{supervise._FUZZ_DIR}targets.py", line 230 in _call\n', None,
                 id="the-fuzzer-only"),
    pytest.param("", None, id="no-dump"),
])
def test_the_dump_is_read_defensively(dump: str, where: str | None) -> None:
    assert supervise._native_location(dump) == where
