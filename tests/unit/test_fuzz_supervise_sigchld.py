"""A supervised fuzz target (``--target MODULE:FUNCTION``) in a fuzzer whose SIGCHLD is ignored (inherited
from its parent, or set by the target's import): the kernel reaps each child at once, so ``waitpid`` failed
(ChildProcessError) and the child's crash was a traceback out of the run (review of fcb3359). The default
action is put back before a child is forked (phoneemu.fuzz.supervise._child_ends_waitable)."""

from __future__ import annotations

import ctypes
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.fuzz import supervise
from phoneemu.fuzz.runwatch import run_once
from phoneemu.fuzz.supervise import SupervisedTarget
from phoneemu.fuzz.targets import PythonTarget, no_core_dumps


def _dies(data: bytes) -> None:
    if data == b"die":
        ctypes.string_at(0)  # SIGSEGV


def _segv_here(signature: str) -> bool:
    """A SIGSEGV signed with where it died: a line of this file's target (phoneemu.fuzz.supervise)."""
    return signature.startswith("killed by SIGSEGV at ") and f"{Path(__file__).name}:" in signature


@pytest.fixture
def sigchld_ignored() -> Iterator[None]:
    old = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGCHLD, old)


@pytest.mark.usefixtures("sigchld_ignored")
@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "waitpid"])
def test_a_crash_is_a_finding_with_sigchld_ignored(pidfd: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not pidfd:
        monkeypatch.setattr(supervise, "_pidfd", lambda _pid: -1, raising=False)
    t = SupervisedTarget(PythonTarget(_dies, name="dies", hang_after=0.5))
    try:
        with no_core_dumps():
            assert t.run(b"ok").status == "ok"
            outcome = run_once(t, b"die")
            assert t.run(b"ok").status == "ok"  # a new child
    finally:
        t.close()
    assert outcome.status == "crash" and _segv_here(outcome.signature), outcome.detail
