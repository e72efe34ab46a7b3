"""A lab operation killed just before one of its disk writes, with a real SIGKILL (no cleanup of any kind) in
a forked child: the machinery of the "old or new, never half" tests of the lab (its served files, its
identities). Count an operation's writes with :func:`count_writes`, then kill a fresh copy of the lab at
each of them with :func:`run_killed`."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from phoneemu.lab.cluster import LabCluster

_WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT
#: what a lab operation does to the disk, counted as a write (besides an ``os.open`` for writing)
_WRITING_CALLS = ("replace", "rename", "unlink", "rmdir")

Operation = Callable[[LabCluster], object]


def _child(root: str, operation: Operation, kill_at: int, counted: str) -> None:
    """Run ``operation`` on the lab in ``root``, SIGKILLed just before its ``kill_at``-th write to the disk (a
    file opened for writing, renamed or removed); not killed, the number of writes goes to the file
    ``counted``."""
    lab = LabCluster.open(root, durable=False)
    seen = [0]

    def hooked(real: Callable[..., Any], writes: Callable[..., bool]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if writes(*args, **kwargs):
                seen[0] += 1
                if seen[0] == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return call

    os.open = hooked(os.open, lambda path, flags, *a, **k: bool(flags & _WRITES))
    for name in _WRITING_CALLS:
        setattr(os, name, hooked(getattr(os, name), lambda *a, **k: True))
    operation(lab)
    Path(counted).write_text(str(seen[0]))


def run_killed(root: Path, operation: Operation, kill_at: int, counted: Path) -> int | None:
    """Run ``operation`` on the lab in ``root`` in a forked child killed before its ``kill_at``-th write (0:
    never; its writes counted into ``counted``); the child's exit code (None: it did not end within a
    minute, and was killed)."""
    with warnings.catch_warnings():  # 3.12+: "multi-threaded process, fork() may deadlock" (not here)
        warnings.simplefilter("ignore", DeprecationWarning)
        proc = multiprocessing.get_context("fork").Process(target=_child,
                                                           args=(str(root), operation, kill_at, str(counted)))
        proc.start()
    proc.join(60)
    if proc.is_alive():
        proc.kill()
        proc.join(10)
        return None
    return proc.exitcode


def count_writes(root: Path, operation: Operation, counted: Path) -> int:
    """The writes ``operation`` makes on the lab in ``root`` run to its end (the lab changed)."""
    assert run_killed(root, operation, 0, counted) == 0
    return int(counted.read_text())


def killed_copy(pristine: Path, work: Path, operation: Operation, kill_at: int, counted: Path) -> None:
    """``work`` made a copy of the lab ``pristine`` again, then ``operation`` run on it killed before its
    ``kill_at``-th write."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(pristine, work)
    assert run_killed(work, operation, kill_at, counted) == -signal.SIGKILL, kill_at
