"""Interrupted runs: nothing is lost, every server keeps running, only our errors escape.

Subprocess probes: a fleet shard killed mid-storm, a phone's flash left damaged by a crash,
``lab serve`` stopped by a signal or started on a port in use, a scenario worker killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from phoneemu.fleet.engine import mac_text
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from tests.helpers import run_within

NOW = 1_780_000_000
HOST = "127.0.0.1"
START = 0x0A0000000300
run = run_within(90)


def _children(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (Linux /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def _shard_pids(pid: int) -> list[int]:
    return [c for c in _children(pid)
            if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


@pytest.mark.slow
def test_fleet_shard_killed_mid_storm_is_counted_lost_and_the_rest_finish(tmp_path: Path) -> None:
    """SIGKILL of one shard during the storm: the parent says so at once (shard, MACs, signal), the
    other shard finishes, the summary and --json count the dead shard's phones as lost, exit 1, no
    process left behind. Before, the parent noticed only when the other shards had finished (their
    progress kept the queue busy), then threw every result away (exit 2, no --json)."""
    c = LabCluster.init(tmp_path / "lab", seed=6, key_spec="rsa1024", now=NOW)
    c.add_phones([mac_text(START + i) for i in range(16)], now=NOW)
    out = tmp_path / "fleet.json"

    async def body() -> tuple[int, str, str, list[int]]:
        async with LabServers(c, host=HOST, tftp_tid_mode="shared") as srv:
            srv.set_network(delay_s=0.02)  # ~0.4 s per boot, one at a time per shard: a few seconds
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "phoneemu", "fleet", "boot", "--count", "16", "--tftp",
                f"{HOST}:{srv.ports['tftp']}", "--mac-start", mac_text(START), "--shards", "2",
                "--concurrency", "1", "-q", "--json", str(out), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            for _ in range(600):  # until the storm has begun, 60 s at most
                if len(srv.requests) >= 2:
                    break
                await asyncio.sleep(0.1)
            shards = _shard_pids(proc.pid)
            assert len(shards) == 2, shards
            first = min(shards)  # spawned first: shard 0
            os.kill(first, signal.SIGKILL)
            so, se = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode is not None
            return proc.returncode, so.decode(), se.decode(), shards

    rc, stdout, stderr, shards = run(body())
    assert rc == 1, (stdout, stderr)
    assert "Traceback" not in stderr
    assert "fleet: lost shard 0 (phoneemu-fleet-0, 8 phones" in stderr and "killed by SIGKILL" in stderr
    assert "8 of 16 phones lost" in stderr
    doc = json.loads(out.read_text())
    summary = doc["summary"]
    assert summary["lost"] == 8 and summary["booted"] == 8 and len(doc["phones"]) == 8
    assert summary["lost_shards"][0]["why"] == "killed by SIGKILL"
    assert summary["lost_shards"][0]["first_mac"] == mac_text(START)
    assert {p["mac"] for p in doc["phones"]} == {mac_text(START + 8 + i) for i in range(8)}
    assert not any(_alive(p) for p in shards)
