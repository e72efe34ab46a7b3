"""A lab cluster's ``capf:`` bounds reach its CAPF server, and the phone handles read the lab's pending
CAPF operation and CAPF log (``capf_pending`` / ``capf_server``; ours, spec §F.6, §F.8)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from phoneemu.protocols.capf import MAX_IN_PROGRESS
from phoneemu.scenario.loader import load_text
from phoneemu.scenario.world import World

SCENARIO = """\
clusters:
  slow: {capf: {read_timeout: 1.5, session_timeout: 4, max_in_progress: 3}}
  plain: {}
phones:
  p: {mac: "0A0000006501", cluster: slow, capf: {operation: install, auth_mode: null-string}}
  q: {mac: "0A0000006502", cluster: plain}
steps:
  - boot: p
  - expect: {phones: p, capf_pending: install}
"""


def test_a_clusters_capf_bounds_reach_its_capf_server(tmp_path: Path) -> None:
    async def main_() -> tuple[list[tuple[float, float, int]], list[tuple[str, str | None]]]:
        world = World(load_text(SCENARIO, "slow.yaml"), tmp_path, start_time=1_780_272_000)
        try:
            await world.start()
            bounds = []
            for name in ("slow", "plain"):
                servers = world.clusters[name].servers
                assert servers is not None
                h = servers.capf_handler
                bounds.append((h.read_timeout, h.session_timeout, h.max_in_progress))
            seen = [(p.capf_pending(), p.capf_server_log())
                    for p in (world.phones["0A0000006501"], world.phones["0A0000006502"])]
            return bounds, seen
        finally:
            await world.close()

    bounds, seen = asyncio.run(main_())
    assert bounds == [(1.5, 4.0, 3), (30.0, 120.0, MAX_IN_PROGRESS)]  # plain: lab serve's defaults
    assert seen == [("install", None), ("none", None)]  # before any CAPF session
