"""Two lab operations on one lab run one after the other (``flock`` on ``DIR/.lab.lock``)."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def _hold(root: Path) -> int:
    """Hold the lab lock as a ``phoneemu lab`` operation writing the lab would (exclusive)."""
    fd = os.open(root / ".lab.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_a_reload_never_reads_a_lab_while_an_operation_holds_the_lock(cluster: LabCluster) -> None:
    import pytest

    from phoneemu.lab.lock import LabBusyError

    other = LabCluster.open(cluster.root)  # stands for the operation's process
    fd = _hold(cluster.root)
    try:
        other.set_service("tvs", False)  # written while "its" lock is held
        with pytest.raises(LabBusyError, match=r"\.lab\.lock is held"):
            cluster.reload_if_changed()
        assert cluster.summary()["stopped"] == []  # nothing read
    finally:
        os.close(fd)
    assert cluster.reload_if_changed() and cluster.summary()["stopped"] == ["tvs"]  # tried again: read


def test_lab_serve_skips_a_reload_while_the_lock_is_held_and_retries_at_the_next_poll(
        cluster: LabCluster, caplog: Any) -> None:
    """``lab serve``'s periodic reload (watch) waits a bounded time for the lab lock, then skips that
    reload with a log line, and picks the change up at a later poll once the lock is free."""
    import asyncio
    import logging

    from phoneemu.lab.servers import LabServers
    from tests.helpers import run

    caplog.set_level(logging.WARNING, logger="phoneemu.lab.servers")

    async def main() -> tuple[list[str], list[str]]:
        async with LabServers(cluster, host="127.0.0.1", watch=0.05) as servers:
            other = LabCluster.open(cluster.root)
            fd = _hold(cluster.root)
            try:
                other.set_service("capf", False)
                for _ in range(100):  # bounded: until a skipped reload is logged (≤ 5 s)
                    if any("reload skipped" in r.getMessage() for r in caplog.records):
                        break
                    await asyncio.sleep(0.05)
                held = list(servers.cluster.summary()["stopped"])
            finally:
                os.close(fd)
            for _ in range(100):  # bounded: the next polls read the change
                if servers.cluster.summary()["stopped"] == ["capf"]:
                    break
                await asyncio.sleep(0.05)
            return held, list(servers.cluster.summary()["stopped"])

    held, after = run(main(), limit=30.0)
    assert held == [] and after == ["capf"]
    logged = [r.getMessage() for r in caplog.records]
    assert any("reload skipped, tried again at the next poll" in m and ".lab.lock" in m for m in logged)
