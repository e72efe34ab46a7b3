"""Review of 756fbb8 (``--target MODULE:FUNCTION`` in a supervised child, phoneemu.fuzz.supervise): the
child's death seen by its end, not only by its pipe's; faulthandler's dump never blocks the death; a target
whose import started threads stays in process, said.

Was: a target that started a helper process (``fork``, a ``multiprocessing`` worker) held the child's pipes
open, so the fuzzer waited for ever for the dead child (past ``--time``: its crash called a hang); a child
with many threads stuck in faulthandler writing their frames to a full pipe (the same wait); a target
whose import started a worker thread ran in a child without it (every input a crash, or the run stuck)."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.fuzz import supervise
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.engine import FuzzConfig, fuzz, input_for
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.runwatch import run_once
from phoneemu.fuzz.supervise import SupervisedTarget
from phoneemu.fuzz.targets import PythonTarget, no_core_dumps

#: seconds the target's helper process lives at most (killed at the test's end; it outlives the wait of
#: the old code, which then called the crash a hang)
HELPER_S = 20.0
#: each test target's hang_after (10 x of wall time is a hang): at 0.05 s a loaded machine took a fork and
#: its crash for a hang (under load ~12, the waitpid variant once)
HANG_AFTER = 0.5
#: the helpers' pids, written by the target in the child (the test kills them)
_PIDS: list[Path] = []
#: the input the forking target dies on in the fuzz loop (set before the child is forked)
_DIES_ON: list[bytes] = []


@pytest.fixture
def helpers(tmp_path: Path) -> Iterator[Path]:
    """Where the target notes its helpers' pids; each killed at the end (bounded: they end on their own)."""
    pids = tmp_path / "helpers"
    _PIDS[:] = [pids]
    try:
        yield pids
    finally:
        _PIDS.clear()
        for line in pids.read_text().split() if pids.exists() else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(line), signal.SIGKILL)


def _fork_a_helper() -> None:
    """What a parser starting a worker process does: the worker inherits the child's pipes."""
    pid = os.fork()
    if pid == 0:
        time.sleep(HELPER_S)
        os._exit(0)
    with _PIDS[0].open("a") as fh:
        fh.write(f"{pid}\n")


def _forks_then_dies(data: bytes) -> None:
    if data == b"die" or data in _DIES_ON:
        _fork_a_helper()
        ctypes.string_at(0)  # SIGSEGV


def _segv_here(signature: str) -> bool:
    """A SIGSEGV signed with where it died: a line of this file's target (phoneemu.fuzz.supervise)."""
    return signature.startswith("killed by SIGSEGV at ") and f"{Path(__file__).name}:" in signature


@pytest.mark.usefixtures("helpers")
@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "waitpid"])
def test_a_crash_is_seen_while_a_process_the_target_started_holds_the_pipe(
        pidfd: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not pidfd:  # a kernel without pidfd_open: the child's end looked at every turn instead
        monkeypatch.setattr(supervise, "_pidfd", lambda _pid: -1, raising=False)
    t = SupervisedTarget(PythonTarget(_forks_then_dies, name="forks", hang_after=HANG_AFTER))
    try:
        with no_core_dumps():
            outcome = run_once(t, b"die")  # was: no end of file, so a hang once 10 x hang_after had passed
            assert t.run(b"ok").status == "ok"  # a new child
    finally:
        t.close()
    assert outcome.status == "crash" and _segv_here(outcome.signature), outcome.detail


@pytest.mark.usefixtures("helpers")
def test_in_the_fuzz_loop_that_crash_is_the_finding_of_its_input(tmp_path: Path) -> None:
    mutator = Mutator(build_corpus("itl"), resign_ratio=0.25)
    first = 3
    _DIES_ON[:] = [input_for(mutator, 0, first).data]
    config = FuzzConfig(fmt="itl", seed=0, runs=first + 3, time_limit=5.0, out=tmp_path / "fz",
                        minimize=False)  # (the limit: what ended the old code's wait)
    t = SupervisedTarget(PythonTarget(_forks_then_dies, name="forks", hang_after=HANG_AFTER))
    try:
        report = fuzz(config, t, mutator)  # was: the dead child waited for to --time, then "a hang"
    finally:
        t.close()
        _DIES_ON.clear()
    assert report.execs == first + 3 and not report.interrupted
    (finding,) = report.findings.values()
    assert (finding.kind, finding.first_run) == ("crash", first) and _segv_here(finding.signature)
    assert report.statuses["crash"] == 1 and report.statuses["ok"] == first + 2


THREADS = 24  # with 100 frames each, faulthandler's dump of them all is far above a pipe's 64 KiB
DEPTH = 100


def _deep(n: int, ready: threading.Barrier, done: threading.Event) -> None:
    if n:
        _deep(n - 1, ready, done)
        return
    with contextlib.suppress(threading.BrokenBarrierError):
        ready.wait(5.0)
    done.wait(5.0)


def _many_threads_then_segv(data: bytes) -> None:
    ready, done = threading.Barrier(THREADS + 1), threading.Event()
    for _ in range(THREADS):
        threading.Thread(target=_deep, args=(DEPTH, ready, done), daemon=True).start()
    with contextlib.suppress(threading.BrokenBarrierError):
        ready.wait(5.0)
    ctypes.string_at(0)  # the crash: this thread's frames are the finding's


def test_a_crash_with_many_threads_is_not_stuck_writing_their_frames() -> None:
    t = SupervisedTarget(PythonTarget(_many_threads_then_segv, name="threads", hang_after=HANG_AFTER))
    try:
        with no_core_dumps():
            outcome = run_once(t, b"x")  # was: the child stuck in faulthandler's write, a hang
    finally:
        t.close()
    assert outcome.status == "crash" and _segv_here(outcome.signature), outcome.detail
    assert "in _many_threads_then_segv" in outcome.detail  # the crash's own frames, not other threads'


PARSER_WITH_A_WORKER = """\
import threading
stop = threading.Event()
worker = threading.Thread(target=stop.wait, args=(60,), name="parser-worker", daemon=True)
worker.start()  # a client library's worker, started as the module is imported

def parse(data):
    if not worker.is_alive():
        raise RuntimeError("the parser's worker thread is gone")
"""


def test_a_target_whose_import_starts_a_thread_runs_in_process_said(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    module = f"rev4_worker_{os.getpid()}"
    (tmp_path / f"{module}.py").write_text(PARSER_WITH_A_WORKER)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        rc = main(["fuzz", "--format", "itl", "--target", f"{module}:parse", "--runs", "5", "--out", "fz",
                   "-q"])
    finally:
        loaded = sys.modules.pop(module, None)
        if loaded is not None:
            loaded.stop.set()
            loaded.worker.join(5.0)
    err = capsys.readouterr().err
    assert rc == 0, err  # was 1: each input a RuntimeError crash, the worker absent in the child
    assert json.loads((tmp_path / "fz" / "summary.json").read_text())["statuses"] == {"ok": 5}
    assert f"--target {module}:parse: its import started 1 thread(s) (parser-worker)" in err
    assert "runs in the fuzzer's own process" in err
