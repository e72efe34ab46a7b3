"""Two lab operations on one lab run one after the other (``flock`` on ``DIR/.lab.lock``)."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from phoneemu.lab.cluster import LabCluster
from tests.helpers import lab_template, reap

REPO = Path(__file__).resolve().parents[2]
template = lab_template("lablock", seed=11, phones={})


def test_a_lab_operation_waits_for_one_holding_the_lab_lock(cluster: LabCluster) -> None:
    clock = cluster.state.clock
    fd = os.open(cluster.root / ".lab.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "phoneemu", "lab", "clock", str(cluster.root),
                             "--advance", "100"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        try:
            proc.wait(timeout=3)
            finished_early = True
        except subprocess.TimeoutExpired:
            finished_early = False
        assert not finished_early, "the operation did not wait for the lab lock"
        os.close(fd)
        fd = -1
        assert proc.wait(timeout=60) == 0
        assert LabCluster.open(cluster.root).state.clock == clock + 100
    finally:
        if fd >= 0:
            os.close(fd)
        reap(proc)
