"""End to end (phoneemu.fleet.alike): a fleet whose config downloads are all cut by the transfer cap, each
phone at the block it had reached, says one kind of failure — the range of blocks in its reason, in the
console summary and in ``fleet boot --json`` — not one kind per block (shards merge alike: unit tests).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.fleet.engine import mac_text
from phoneemu.lab.cluster import LabCluster
from tests.helpers import fleet_lab, serve_in_thread

NOW = 1_780_000_000
HOST = "127.0.0.1"
START = 0x0A0000000300
COUNT = 8
CAPPED = re.compile(r"no config could be fetched: timeout: TFTP transfer of SEP\{mac\}\.cnf\.xml took longer "
                    r"than 0\.4 s \(at block (\d+)(?:-(\d+))?\)")


@pytest.fixture
def lab(tmp_path: Path) -> LabCluster:
    made: LabCluster = fleet_lab(tmp_path, seed=7, start=START, count=COUNT, now=NOW)
    return made


def test_phones_cut_at_different_blocks_are_one_kind(lab: LabCluster, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "fleet.json"
    # the ITL fails at once (ERROR 0); the config comes 16 bytes a block with lost blocks sent again after
    # 0.1 s: the 0.4 s cap cuts each phone's config where its losses left it (no wait times out before)
    ports, stop = serve_in_thread(lab, tftp_tid_mode="shared",
                                  prepare=lambda srv: srv.set_network(loss=0.15, seed=5, fail=["ITL*"],
                                                                      tftp_timeout_s=0.1))
    try:
        code = main(["fleet", "boot", "--count", str(COUNT), "--tftp", f"{HOST}:{ports['tftp']}", "--no-http",
                     "--mac-start", mac_text(START), "--shards", "0", "--concurrency", str(COUNT),
                     "--blksize", "16", "--fetch-max-time", "0.4", "--timeout", "0.35", "--retries", "5",
                     "--json", str(out), "-q"])
    finally:
        stop()
    assert code == 1
    doc = json.loads(out.read_text())
    blocks = set()
    for phone in doc["phones"]:
        got = CAPPED.fullmatch(phone["reason"].replace(phone["mac"], "{mac}"))
        assert phone["outcome"] == "no-config" and got, phone
        blocks.add(int(got[1]))
    assert len(blocks) > 1, blocks  # the losses left the phones at different blocks (was a kind each)
    s = doc["summary"]
    assert s["failure_kinds_not_kept"] == 0 and len(s["failure_kinds"]) == 1, s["failure_kinds"]
    kind = s["failure_kinds"][0]
    assert kind["count"] == COUNT
    shown = CAPPED.fullmatch(kind["reason"])
    assert shown, kind
    lo, hi = int(shown[1]), int(shown[2] or shown[1])
    assert (lo, hi) == (min(blocks), max(blocks))
    assert f"  failed: {COUNT} phones no-config (H.3-config-transport-failed): {kind['reason']}" \
           in capsys.readouterr().out
