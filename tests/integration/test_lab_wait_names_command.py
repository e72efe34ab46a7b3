"""A lab command waiting for the lab lock names itself on stderr (``phoneemu lab show: waiting for the lab
lock ...``), as its errors do and as ``boot``'s and ``fleet``'s waiting lines do (:mod:`phoneemu.lab.lock`).

Each test holds the lock as an operation writing the lab does (exclusive ``flock`` on ``DIR/.lab.lock``),
waits (bounded) for the command's waiting line, releases the lock and lets the command finish.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.lock import LOCK_FILE
from tests.helpers import LinePump, lab_template, reap, wait_reading_stdout

REPO = Path(__file__).resolve().parents[2]
MAC = "0A00000000E1"
template = lab_template("labwaitnames", seed=19, phones={})


@pytest.mark.parametrize(("typed", "extra"), [
    (["lab", "show"], []),  # a reader (the lock shared)
    (["lab", "clock"], ["--advance", "100"]),  # an operation (the lock exclusive)
    (["lab", "phone", "add"], ["--mac", MAC, "--now", "1780000000"]),  # an operation two levels down
])
def test_a_lab_command_waiting_for_the_lock_names_itself(cluster: LabCluster, typed: list[str],
                                                         extra: list[str]) -> None:
    """Before: ``waiting for the lab lock ...`` alone, no command named (boot's line says ``boot: ...``)."""
    root = cluster.root
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    proc = subprocess.Popen([sys.executable, "-m", "phoneemu", *typed, str(root), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stderr is not None
    err = LinePump(proc.stderr)
    try:
        try:
            assert err.wait_for("waiting for the lab lock", 60), err.text(0)
        finally:
            os.close(fd)
        wait_reading_stdout(proc, 60)
        assert proc.returncode == 0, err.text()
    finally:
        reap(proc)
    said = err.text()
    command = "phoneemu " + " ".join(typed)
    assert f"{command}: waiting for the lab lock {root / LOCK_FILE}: held by " in said, said
