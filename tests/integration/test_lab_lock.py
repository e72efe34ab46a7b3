"""Two lab operations on one lab run one after the other (``flock`` on ``DIR/.lab.lock``)."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from phoneemu.lab.cluster import LabCluster
from tests.helpers import lab_template, reap, still_running_after, waits_for_flock

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
        # still running 3 s on, or sooner once the kernel shows it blocked in flock on the lab lock
        waits = still_running_after(proc, 3, lambda: waits_for_flock(proc.pid, cluster.root / ".lab.lock"))
        assert waits, "the operation did not wait for the lab lock"
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


# --------------------------------------------------------------------------- lab serve's own writes
def test_lab_serve_keeps_a_change_another_process_saved_after_it_read_the_lab(cluster: LabCluster) -> None:
    """``lab serve`` read the lab, then an operation saved a change, then serve records its ports: the
    operation's change is kept (serve re-reads the saved state under the lock before writing). Before,
    serve saved its stale copy with the ports in it and the operation's change was lost."""
    from phoneemu.lab.servers import LabServers
    from tests.helpers import run

    operation = LabCluster.open(cluster.root)  # another process's view of the lab
    operation.set_tvs_ttl(1234)

    async def main() -> dict[str, int]:
        async with LabServers(cluster, host="127.0.0.1") as servers:
            return {k: v for k, v in servers.ports.items() if k != "https"}

    ports = run(main())
    saved = LabCluster.open(cluster.root).state
    assert saved.tvs_ttl == 1234, "the operation's change was lost"
    assert saved.ports == ports and cluster.state.tvs_ttl == 1234
    assert [e.op for e in saved.log[-2:]] == ["tvs-ttl", "ports"]


def test_lab_serve_records_its_ports_only_under_the_lab_lock(cluster: LabCluster) -> None:
    """While an operation holds the lab lock (and writes the lab), ``lab serve`` does not write: its port
    record waits for the lock, the loop still running, then goes into what the operation saved."""
    import asyncio

    from phoneemu.lab.servers import LabServers
    from tests.helpers import run

    before = (cluster.root / "cluster.json").read_bytes()

    async def main() -> tuple[bool, bytes, dict[str, int]]:
        servers = LabServers(cluster, host="127.0.0.1")
        fd = _hold(cluster.root)
        try:
            start = asyncio.ensure_future(servers.start())
            await asyncio.sleep(0.6)  # the loop runs: serve had every chance to write
            waited = not start.done()
            on_disk = (cluster.root / "cluster.json").read_bytes()
            LabCluster.open(cluster.root).set_tvs_ttl(4321)  # the operation's write, under its lock
        finally:
            os.close(fd)
        try:
            await asyncio.wait_for(start, 10)
            return waited, on_disk, {k: v for k, v in servers.ports.items() if k != "https"}
        finally:
            await servers.stop()

    waited, on_disk, ports = run(main())
    assert waited and on_disk == before, "lab serve wrote the lab while an operation held the lock"
    saved = LabCluster.open(cluster.root).state
    assert saved.tvs_ttl == 4321 and saved.ports == ports


def test_lab_serve_subprocess_and_a_concurrent_operation_lose_neither_write(cluster: LabCluster) -> None:
    """The command: ``lab serve --host 127.0.0.2`` started while an operation holds the lab lock writes
    nothing until the lock is free, then records its ports and host in the state the operation saved
    (both writes kept, the configs name the new host), and the state file is whole throughout."""
    import re
    import signal
    import time

    from tests.helpers import LinePump, reap

    root = cluster.root
    before = (root / "cluster.json").read_bytes()
    fd = _hold(root)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "phoneemu", "lab", "serve", str(root), "--host",
                             "127.0.0.2", "--tftp-port", "0", "--http-port", "0", "--tvs-port", "0",
                             "--capf-port", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO)
    assert proc.stdout is not None and proc.stderr is not None
    err = LinePump(proc.stderr)
    try:
        try:
            # started and bound its ports: waits for the lock (logged after LOCK_WAIT_S); before, it wrote
            waits = err.wait_for("waiting for it to record this server's change", 30)
            assert proc.poll() is None, err.text(0)
            assert (root / "cluster.json").read_bytes() == before, "lab serve wrote under an operation's lock"
            assert waits, err.text(0)
            LabCluster.open(root).set_tvs_ttl(777)  # the operation's write
        finally:
            os.close(fd)
        ports: dict[str, int] = {}
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while len(ports) < 4 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.match(r"listening (\w+)\s+\w+ 127\.0\.0\.2:(\d+)", line)
            if m:
                ports[m.group(1)] = int(m.group(2))
        assert set(ports) == {"tftp", "http", "tvs", "capf"}, "".join(lines)
        assert "re-issued for 127.0.0.2" in "".join(lines)
        saved = LabCluster.open(root).state
        assert saved.tvs_ttl == 777 and saved.ports == ports and saved.host == "127.0.0.2"
        assert {"tvs-ttl", "ports", "host"} <= {e.op for e in saved.log}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        reap(proc)
