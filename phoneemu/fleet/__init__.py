"""Fleets: thousands of real phones booting at once, sharded across cores (issue #6).

* :func:`boot_many` — single process, the scenario runner's entry for phone groups with count > 1.
* :func:`run_fleet` — one process per core, each its own asyncio loop and TFTP client pool.
* :class:`FleetMetrics` — counts by outcome and deciding rule, latency percentiles, rate, peak RSS.
"""

from __future__ import annotations

from phoneemu.fleet.engine import FleetSpec, Prestate, ShardResult, boot_many, run_shard
from phoneemu.fleet.metrics import BootRecord, FleetMetrics, outcome_of, peak_rss_mib, percentile
from phoneemu.fleet.shard import FleetResult, run_fleet

__all__ = [
    "BootRecord",
    "FleetMetrics",
    "FleetResult",
    "FleetSpec",
    "Prestate",
    "ShardResult",
    "boot_many",
    "outcome_of",
    "peak_rss_mib",
    "percentile",
    "run_fleet",
    "run_shard",
]
