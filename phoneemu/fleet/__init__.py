"""Fleets: thousands of real phones booting at once, sharded across cores (issue #6).

* :func:`boot_many` — single process, the scenario runner's entry for phone groups with count > 1.
* :func:`run_fleet` — one process per core, each its own asyncio loop and TFTP client pool.
* :class:`FleetMetrics` — counts by outcome and deciding rule, latency percentiles, rate, peak RSS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from phoneemu.lazy_exports import lazy_exports

if TYPE_CHECKING:  # imported when first used (phoneemu.lazy_exports: start-up time)
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

_HOME = {
    **dict.fromkeys(("FleetSpec", "Prestate", "ShardResult", "boot_many", "run_shard"), "engine"),
    **dict.fromkeys(("BootRecord", "FleetMetrics", "outcome_of", "peak_rss_mib", "percentile"), "metrics"),
    **dict.fromkeys(("FleetResult", "run_fleet"), "shard"),
}
if not TYPE_CHECKING:  # mypy sees the imports above, and no __getattr__ making every other name Any
    __getattr__, __dir__ = lazy_exports(__name__, _HOME)
