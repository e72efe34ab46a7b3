"""A fleet shard makes each phone as its boot starts (``fleet.engine`` module rules).

Was: ``run_shard`` made every phone of its shard before the first boot — with ``--flash`` each flash read
(and written back), each lab MIC read and checked: ``fleet boot --lab --flash`` of 3,000 phones spent 7 to
20 s in silence before the storm, counted in neither the summary's time nor ``--max-time``, a Ctrl-C then
killing the shards (no phone booted). And a phone whose flash could not be written (a file where its
folder goes) failed the whole shard before any boot.
"""

from __future__ import annotations

from pathlib import Path

from phoneemu.fleet.engine import FleetSpec, mac_text, run_shard
from phoneemu.fleet.metrics import NOT_BOOTED
from phoneemu.phone.boot import BootTarget
from tests.helpers import run_within

START = 0x0A0000000E00
#: UDP discard port on loopback: nothing listens, every request is refused at once
TARGET = BootTarget(host="127.0.0.1", tftp_port=9, use_http=False, use_https_config=False)

run = run_within(60)


def test_no_phone_is_made_before_the_storm_nor_after_a_stop(tmp_path: Path) -> None:
    """At ``ready`` (the storm's start) no flash was read or written; a run stopped at once (Ctrl-C,
    --max-time) makes no phone at all: every one not started, no flash folder made."""
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    spec = FleetSpec(target=TARGET, count=4, mac_start=START, flash_dir=str(fleet), concurrency=1)
    at_ready: list[list[str]] = []

    def ready() -> None:
        at_ready.append(sorted(p.name for p in fleet.iterdir()))

    res = run(run_shard(spec, range(START, START + 4), ready=ready, should_stop=lambda: True))
    assert at_ready == [[]]
    assert (res.not_started, res.metrics.total) == (4, 0)
    assert list(fleet.iterdir()) == []


def test_a_phone_whose_flash_cannot_be_written_fails_alone(tmp_path: Path) -> None:
    """A file where a phone's flash folder goes: that phone is counted failed, not booted, its reason naming
    the folder; the others boot (was: FileExistsError out of the shard, before any boot)."""
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / mac_text(START + 1)).write_bytes(b"not a folder")
    spec = FleetSpec(target=TARGET, count=3, mac_start=START, flash_dir=str(fleet), concurrency=2,
                     fetch_timeout=0.2, fetch_retries=0, keep_records=True)
    res = run(run_shard(spec, range(START, START + 3)))
    by_mac = {r.mac: r for r in res.records}
    assert sorted(by_mac) == [mac_text(START + i) for i in range(3)] and res.not_started == 0
    bad = by_mac[mac_text(START + 1)]
    assert (bad.outcome, bad.rule) == ("error", NOT_BOOTED)
    assert bad.reason is not None and bad.reason.startswith("flash: ") and str(fleet / mac_text(START + 1)) \
        in bad.reason
    assert all(by_mac[mac_text(START + i)].rule != NOT_BOOTED for i in (0, 2))
    assert (fleet / mac_text(START) / "phone.json").is_file()
