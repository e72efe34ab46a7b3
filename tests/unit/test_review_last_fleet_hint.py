"""Review of the last commits (``fleet boot``'s "nothing answered" hint, ``FleetMetrics.unanswered``): the
hint says that nothing answered any phone, so it is said only when every phone's answer is known.

A shard lost during the storm takes its phones' records with it (``LostShard``: ``reported_done`` of them had
finished booting): whether any of them got an answer is not known, and the hint claimed that none did from
the other shards' phones alone ("nothing answered at ...: is the cluster's TFTP server running there?" beside
"lost shard 0 ... 3 had finished booting"). The storm is stood in for (``commands.fleet.run_fleet``): its
result is what the test is about, no phone boots.
"""

from __future__ import annotations

from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.fleet.metrics import BootRecord, FleetMetrics
from phoneemu.fleet.shard import FleetResult, LostShard, ShardResult

FIRST = 0x0A00000000A0
TARGET = "127.0.0.1:6969"


def _unanswered(macs: list[int]) -> FleetMetrics:
    """A shard's metrics: each phone got no answer to any request (a TFTP timeout, no config)."""
    metrics = FleetMetrics()
    for mac in macs:
        metrics.add(BootRecord(mac=f"{mac:012X}", outcome="no-config", rule="H.3-config-transport-failed",
                               latency_s=0.1, end_s=0.1, reason="TFTP timeout", answered=False))
    return metrics


def _storm(lost: list[LostShard]) -> Any:
    """``run_fleet`` standing in for the storm: shard 1's two phones unanswered, ``lost`` lost."""
    def run_fleet(_spec: Any, **_options: Any) -> FleetResult:
        kept = _unanswered([FIRST + 2, FIRST + 3])
        return FleetResult(metrics=FleetMetrics.merged([kept]), shards=[ShardResult(shard=1, metrics=kept)],
                           lost=lost)
    return run_fleet


def _fleet_boot(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                lost: list[LostShard]) -> tuple[int, str]:
    monkeypatch.setattr("phoneemu.commands.fleet.run_fleet", _storm(lost))
    code = main(["fleet", "boot", "--count", "4", "--mac-start", f"{FIRST:012X}", "--tftp", TARGET,
                 "--shards", "2", "--no-http", "-q"])
    return code, capsys.readouterr().err


def test_a_fleet_with_a_lost_shard_does_not_say_nothing_answered(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Shard 0 lost after 2 of its phones had finished booting (answered or not: unknown)."""
    lost = [LostShard(shard=0, first_mac=FIRST, phones=2, why="killed by SIGKILL", reported_done=2)]
    code, err = _fleet_boot(monkeypatch, capsys, lost)
    assert code == 1
    assert "2 of 4 phones lost" in err, err
    assert "nothing answered" not in err, err


def test_the_same_fleet_without_a_lost_shard_says_it(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The counterpart: every phone that ran is known unanswered, the hint said once (the stand-in works)."""
    code, err = _fleet_boot(monkeypatch, capsys, [])
    assert code == 1
    assert [line for line in err.splitlines() if "nothing answered at 127.0.0.1" in line], err
