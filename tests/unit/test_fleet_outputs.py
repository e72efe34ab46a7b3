"""``fleet boot``'s outputs agree and say nothing false at the edges: a phone never booted (rule
``not-booted``: its lab MIC, flash or manual key unusable) is counted but not timed — it was a 0 ms boot in
the percentiles, a boot ending at 0 s in the rate and ``--plot`` —, the counts of the summary text, the
JSON and the JUnit are the same phones, and a run in which no phone ended a boot (interrupted as its shards
started) prints no empty ``by outcome:`` / ``by deciding rule:`` heads."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from phoneemu.commands import fleet as fleet_cmd
from phoneemu.fleet.metrics import NOT_BOOTED, BootRecord, FleetMetrics
from phoneemu.fleet.shard import FleetResult, ShardResult


def _records() -> list[BootRecord]:
    booted = [BootRecord(mac=f"0A000000000{i}", outcome="ok", rule="G.4-signed-by-itl-tftp", latency_s=lat,
                         end_s=1.0 + lat) for i, lat in enumerate((0.020, 0.040, 0.060))]
    never = [BootRecord(mac=f"0A000000001{i}", outcome="error", rule=NOT_BOOTED, latency_s=0.0, end_s=0.0,
                        reason="its lab MIC does not load") for i in range(4)]
    return [*never, *booted]


def test_a_phone_never_booted_is_counted_not_timed() -> None:
    shards = []
    for part in (_records()[:2], _records()[2:]):  # two shards, merged as the parent merges them
        m = FleetMetrics()
        for rec in part:
            m.add(rec)
        shards.append(FleetMetrics.from_state(m.to_state()))
    merged = FleetMetrics.merged(shards)
    assert (merged.total, merged.booted, merged.failed) == (7, 3, 4)
    assert merged.latency_percentiles() == {"p50": 40.0, "p90": 60.0, "p99": 60.0, "max": 60.0}
    assert sorted(merged.end_times) == [1.02, 1.04, 1.06]  # what --plot draws: three boots, none at 0 s
    assert merged.rate_series(1.0) == [0, 3]


def test_the_summary_json_and_junit_count_the_same_phones(tmp_path: Path) -> None:
    m = FleetMetrics()
    for rec in _records():
        m.add(rec)
    shard = ShardResult(shard=0, metrics=m, not_started=2)
    result = FleetResult(metrics=m, shards=[shard], records=_records())
    text = m.render().splitlines()
    summary = result.summary()
    assert text[0].startswith("7 phones: 3 booted, 4 failed in ")
    assert (summary["phones"], summary["booted"], summary["failed"], summary["not_started"]) == (7, 3, 4, 2)
    junit = tmp_path / "fleet.xml"
    fleet_cmd._write_junit(junit, result, target="127.0.0.1", count=9)
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    # a case per phone with a record, and one counting the 2 not started: not interrupted, so stopped (a
    # time bound, giving up): an error, the JUnit not green (no MACs given: one case for both)
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "8", "failures": "4", "errors": "1", "skipped": "0"}
    assert "stopped 2 phones before they started" in ET.tostring(suite, encoding="unicode")


def test_a_run_in_which_no_phone_ended_a_boot_prints_no_empty_heads() -> None:
    lines = FleetMetrics().render().splitlines()
    assert lines[0].startswith("0 phones: 0 booted, 0 failed"), lines
    assert not [line for line in lines if line.rstrip().endswith(":")], lines
