"""A fleet shard lets go of each phone once its boot ended (``fleet.engine`` module rules): a phone's
state after its boot (its new config, its event log, ...) is no longer held until the end of the storm,
so a shard's memory does not grow with every phone booted. Checked on a storm like the benchmark's: a
mixed-mode lab whose ITLRecovery changed, each phone asking TVS, then installing the ITL and its config.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

import pytest

from phoneemu.fleet import engine
from phoneemu.fleet.engine import FleetSpec, run_shard
from phoneemu.lab.servers import LabServers
from phoneemu.phone.boot import BootTarget
from tests.helpers import fleet_lab, held_then_itlrecovery_regenerated, run_within

NOW = 1_780_000_000
HOST = "127.0.0.1"
START = 0x0A0000000400
COUNT = 8

run = run_within(120)


def test_each_phone_is_freed_when_its_boot_ended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = fleet_lab(tmp_path, seed=4, start=START, count=COUNT, now=NOW, mixed_mode=True)
    built: list[weakref.ref[Any]] = []
    make_phones = engine.make_phones

    def watched(*args: Any, **kwargs: Any) -> Any:
        phones = make_phones(*args, **kwargs)
        built.extend(weakref.ref(p) for p in phones)
        return phones

    monkeypatch.setattr(engine, "make_phones", watched)
    alive_at_end: list[int] = []

    def progress(done: int, _ok: int, _failing: Any, _pausing: int, _capf_failed: int) -> None:
        if done == COUNT and not alive_at_end:  # the storm's last report, before run_shard returns
            alive_at_end.append(sum(ref() is not None for ref in built))

    async def body() -> Any:
        async with LabServers(c, host=HOST, tftp_tid_mode="shared") as srv:
            pre = held_then_itlrecovery_regenerated(c, tmp_path, now=NOW)
            target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"], use_http=False)
            spec = FleetSpec(target=target, count=COUNT, mac_start=START, concurrency=2, prestate=pre,
                             fetch_timeout=1.0, tvs_timeout=10.0)
            return await run_shard(spec, range(START, START + COUNT), on_progress=progress,
                                   progress_interval=0.05)

    res = run(body())
    s = res.metrics.summary()
    assert s["booted"] == COUNT, [(f["rule"], f.get("reason")) for f in s["failures"]]
    assert s["tvs_used"] == COUNT  # each boot went the whole way: TVS, ITL, config
    assert len(built) == COUNT
    # frozen out of the cyclic GC's reach during the storm (gc.freeze): freed by their reference counts
    # alone, so neither the shard nor a cycle holds a phone once it booted
    assert alive_at_end == [0]
