"""``phoneemu fuzz --target MODULE:FUNCTION`` whose callable dies natively (SIGSEGV, an abort, ``os._exit``):
the fuzzer survives it — a finding with its input, the run goes on to ``--runs``, summary.json counts it
(phoneemu.fuzz.supervise; was: the fuzzer itself killed, exit 139, the input lost, no summary.json)."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.fuzz import supervise
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.engine import FuzzConfig, fuzz, input_for
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.runwatch import run_once
from phoneemu.fuzz.supervise import SupervisedTarget
from phoneemu.fuzz.targets import PythonTarget, no_core_dumps
from tests.fuzz_helpers import ROOT, run_line, split_line

#: the user's parser: dies natively, or raises, for inputs of some lengths (deterministic, hit quickly)
PARSER = """\
import ctypes, os
def parse(data):
    if len(data) % 7 == 3:
        ctypes.string_at(0)  # SIGSEGV
    if len(data) % 7 == 5:
        os.abort()  # SIGABRT
    if len(data) % 11 == 4:
        raise ValueError("a Python crash")
    if len(data) % 13 == 6:
        os._exit(3)
"""
#: each kind's signature: a native crash's names the parser's line where it died (os._exit: no dump, no place)
SIGNATURES = {"segv": "killed by SIGSEGV at native_parser.py:4",
              "abrt": "killed by SIGABRT at native_parser.py:6",
              "val": "ValueError at native_parser.py:8", "exit": "exit status 3"}
RUNS = 40
#: CPU seconds after which the "endless" loops below give up (so that a run that does not stop them ends)
ESCAPE_S = 5.0


def _kind(data: bytes) -> str:
    n = len(data)
    hits = (("segv", n % 7 == 3), ("abrt", n % 7 == 5), ("val", n % 11 == 4), ("exit", n % 13 == 6))
    return next((kind for kind, hit in hits if hit), "ok")


@pytest.fixture(scope="module")
def mutator() -> Mutator:
    return Mutator(build_corpus("itl"), resign_ratio=0.25)  # as the command line's


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """``phoneemu fuzz`` of the parser, in a process of its own (the old code died there, not the tests)."""
    here = tmp_path_factory.mktemp("native")
    (here / "native_parser.py").write_text(PARSER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "phoneemu", "fuzz", "--format", "itl", "--target",
                           "native_parser:parse", "--runs", str(RUNS), "--out", "fz", "--no-minimize", "-q"],
                          cwd=here, env=env, capture_output=True, text=True, timeout=120, check=False)
    return here, proc


def _finding(here: Path, signature: str) -> dict[str, Any]:
    summary = json.loads((here / "fz" / "summary.json").read_text())
    (f,) = [f for f in summary["findings"] if f["signature"] == signature]
    return dict(f)


def test_a_native_crash_is_a_finding_and_the_run_goes_on(run: tuple[Path, subprocess.CompletedProcess[str]],
                                                         mutator: Mutator) -> None:
    here, proc = run
    assert proc.returncode == 1, proc.stderr  # was -11: the fuzzer killed by the target's SIGSEGV
    summary = json.loads((here / "fz" / "summary.json").read_text())
    kinds = [_kind(input_for(mutator, 0, i).data) for i in range(RUNS)]
    assert {"segv", "abrt", "val", "exit", "ok"} <= set(kinds)  # the test sees every kind
    assert summary["interrupted"] is False and summary["error"] is None
    assert summary["execs"] == RUNS and summary["next_run_index"] == RUNS
    assert summary["statuses"] == {"ok": kinds.count("ok"), "crash": RUNS - kinds.count("ok")}
    found = {f["signature"]: f for f in summary["findings"]}
    assert set(found) == set(SIGNATURES.values())
    for kind, signature in SIGNATURES.items():
        f = found[signature]
        assert (f["kind"], f["count"], f["first_run"]) == ("crash", kinds.count(kind), kinds.index(kind))
        folder = Path(f["dir"])
        assert (folder / "input.bin").read_bytes() == input_for(mutator, 0, f["first_run"]).data
        info = json.loads((folder / "info.json").read_text())
        assert info["run_index"] == f["first_run"] and info["reproduce"] and info["regenerate"]
    detail = json.loads((Path(found[SIGNATURES["segv"]]["dir"]) / "info.json").read_text())["detail"]
    assert 'native_parser.py", line 4 in parse' in detail  # faulthandler's frames, the user's line
    assert "engine.py" not in detail  # not the fuzzer's own below it
    assert f"{SIGNATURES['segv']} (x" in proc.stdout


def test_the_reproduce_command_replays_the_native_crash(run: tuple[Path, subprocess.CompletedProcess[str]],
                                                        tmp_path: Path) -> None:
    here, _ = run
    info = json.loads((Path(_finding(here, SIGNATURES["abrt"])["dir"]) / "info.json").read_text())
    with no_core_dumps():  # --replay keeps the limits it is given: none here
        done = run_line(info["reproduce"], cwd=tmp_path)  # from another folder: its cd
    assert done.returncode == 1, done.stderr
    assert f"crash — {SIGNATURES['abrt']}" in done.stdout
    assert "native_parser.py" in done.stderr  # its traceback said


def test_the_regenerate_command_rebuilds_the_input_that_crashed(
        run: tuple[Path, subprocess.CompletedProcess[str]], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    here, _ = run
    folder = Path(_finding(here, SIGNATURES["segv"])["dir"])
    monkeypatch.chdir(here)
    monkeypatch.syspath_prepend(str(here))
    cd, argv = split_line(json.loads((folder / "info.json").read_text())["regenerate"])
    assert cd == here.resolve()
    assert main([*argv[1:], "--no-minimize"]) == 1  # in a child of the tests: they go on
    assert f"crash — {SIGNATURES['segv']}" in capsys.readouterr().out
    assert (folder / "regenerated" / "input.bin").read_bytes() == (folder / "input.bin").read_bytes()


# ------------------------------------------------------------------ SupervisedTarget itself
def _native(data: bytes) -> None:
    if data == b"segv":
        ctypes.string_at(0)
    if data == b"exit":
        os._exit(3)
    if data == b"ctrl-c":
        raise KeyboardInterrupt
    if data == b"count":
        _native.calls += 1  # type: ignore[attr-defined]
        raise ValueError(_native.calls)  # type: ignore[attr-defined]


_native.calls = 0  # type: ignore[attr-defined]


def _spin(seconds: float) -> None:
    c0 = time.thread_time()
    while time.thread_time() - c0 < seconds:
        pass


def _endless(data: bytes) -> None:
    """A parser stuck for ever on inputs of some lengths (bounded here by ESCAPE_S of CPU)."""
    if len(data) % 7 == 3:
        _spin(ESCAPE_S)


def test_one_input_at_a_time_a_dead_child_is_replaced() -> None:
    t = SupervisedTarget(PythonTarget(_native, name="native"))
    try:
        with t.session():
            assert t.run(b"count").detail.rstrip().endswith("ValueError: 1")
            segv = t.run(b"segv").signature  # where it died: this file's line in _native
            assert segv.startswith("killed by SIGSEGV at ") and f"{Path(__file__).name}:" in segv, segv
            assert t.run(b"count").detail.rstrip().endswith("ValueError: 1")  # a new child, as forked
            assert t.run(b"count").detail.rstrip().endswith("ValueError: 2")  # the same one
            exited = t.run(b"exit")
            assert (exited.status, exited.signature) == ("crash", "exit status 3")
            with pytest.raises(KeyboardInterrupt):  # the target's own: as in process
                t.run(b"ctrl-c")
            assert t.run(b"ok").status == "ok"
    finally:
        t.close()


def test_a_hang_in_the_child_is_stopped_by_its_cpu_time() -> None:
    """``--replay`` of an endless loop: the child's CPU time (the fuzzer's own is idle) makes it a hang.
    0.3 s of CPU, and the CPU said checked against a sixth of it: on a loaded machine the wall-time rule
    (blocked past ten times the limit) may end the call first, with less CPU than the limit, never ~0."""
    t = SupervisedTarget(PythonTarget(_endless, name="endless", hang_after=0.3))
    try:
        outcome = run_once(t, b"abc")
    finally:
        t.close()
    assert (outcome.status, outcome.signature) == ("hang", "hang in endless (> 0.3 s)")
    cpu = float(outcome.detail.split(", ")[1].split(" s of CPU")[0])
    assert cpu > 0.05, outcome.detail  # the child's: the fuzzer's own, waiting, stays near 0


def test_an_endless_loop_past_the_time_limit_in_a_batch_is_a_hang(tmp_path: Path, mutator: Mutator) -> None:
    """The input under way is a hang only past ``--time`` (hang_after 1 s, the limit 0.5 s): stopped then, and
    the run ends (one that is a hang before the limit is a finding and the run goes on:
    test_fuzz_supervised_endless_loop)."""
    config = FuzzConfig(fmt="itl", seed=0, time_limit=0.5, out=tmp_path, minimize=False)
    t = SupervisedTarget(PythonTarget(_endless, name="endless", hang_after=1.0))
    try:
        report = fuzz(config, t, mutator)
    finally:
        t.close()
    first = next(i for i in range(1000) if len(input_for(mutator, 0, i).data) % 7 == 3)
    assert not report.interrupted and report.execs == first + 1
    assert report.statuses == Counter({"hang": 1, "ok": first})
    (finding,) = report.findings.values()
    assert (finding.kind, finding.first_run) == ("hang", first)
    assert finding.data == input_for(mutator, 0, first).data
    assert "stopped by the --time limit" in finding.detail


def _ctrl_c_once_hung(data: bytes) -> None:
    """Spins past hang_after on inputs of some lengths, then the fuzzer gets a Ctrl-C (SIGINT) meanwhile."""
    if len(data) % 7 == 3:
        _spin(0.2)
        os.kill(os.getppid(), signal.SIGINT)
        _spin(ESCAPE_S)


def test_ctrl_c_while_a_batch_runs_keeps_the_hang_under_way(tmp_path: Path, mutator: Mutator,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The fuzzer looks at the batch only every ESCAPE_S here, so the Ctrl-C comes first: a look would have
    stopped the input as a hang at once (test_fuzz_supervised_endless_loop), with no Ctrl-C to keep it."""
    monkeypatch.setattr(supervise, "_LOOK_EVERY", ESCAPE_S)
    config = FuzzConfig(fmt="itl", seed=0, runs=50, out=tmp_path, minimize=False)
    t = SupervisedTarget(PythonTarget(_ctrl_c_once_hung, name="p", hang_after=0.05))
    try:
        report = fuzz(config, t, mutator)
    finally:
        t.close()
    first = next(i for i in range(50) if len(input_for(mutator, 0, i).data) % 7 == 3)
    assert report.interrupted and report.execs == first + 1
    assert report.statuses["hang"] == 1 and sum(report.statuses.values()) == first + 1
    (finding,) = report.findings.values()
    assert (finding.kind, finding.first_run) == ("hang", first)
    assert "stopped by Ctrl-C or SIGTERM" in finding.detail
