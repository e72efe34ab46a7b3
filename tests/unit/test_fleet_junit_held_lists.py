"""``fleet boot --junit``: a locked-out phone's ways out are those of the lists it holds (its record's
``held``), as the summary's group says (``phone.ways_out.ways_group``). Was: without ``--flash`` (the
flashes not kept, nothing to read them from) the JUnit case got the table's ways, ``lab rollback OLD on``
among them, for a phone holding a CTL, which the rollback ITL does not blank (spec §G.3 note), while the
summary's group of that phone left it out."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

from phoneemu.commands.fleet import _write_junit
from phoneemu.fleet.metrics import BootRecord, FleetMetrics
from phoneemu.phone.ways_out import HeldLists

RULE = "G.3.4-tvs-unreachable"
WITH_CTL, NO_CTL = "0A0000002911", "0A0000002901"


def _locked(mac: str, held: HeldLists) -> BootRecord:
    return BootRecord(mac=mac, outcome="locked-out", rule=RULE, kind="ITL", latency_s=0.01, end_s=0.02,
                      reason="TVS unreachable", held=held)


def _ways(body: str) -> list[str]:
    """The situations of the ways out in a JUnit failure's body (``way out (SITUATION): ...``)."""
    return [line.split("):", 1)[0].removeprefix("way out (") for line in body.splitlines()
            if line.startswith("way out (")]


def test_junit_ways_out_are_the_summarys_group_of_the_lists_held(tmp_path: Path) -> None:
    records = [_locked(NO_CTL, HeldLists.of(ctl=False, empty_itl=False)),
               _locked(WITH_CTL, HeldLists.of(ctl=True, empty_itl=False))]
    metrics = FleetMetrics()
    for rec in records:
        metrics.add(rec)
    result = SimpleNamespace(records=records, not_started=0, lost=[], metrics=metrics)
    report = tmp_path / "fleet.xml"
    _write_junit(report, result, target="127.0.0.1:69", count=2, lab=Path("/tmp/newlab"), flash=None)
    bodies = {case.get("name"): case.findtext("failure") or ""
              for case in ET.parse(report).getroot().iter("testcase")}
    groups = metrics.summary()["ways_out"]  # the summary's: one group without a CTL, one with
    by_held = {bool(g.get("held", {}).get("ctl")): [w["when"] for w in g["ways"]] for g in groups}
    assert len(groups) == 2 and by_held[True] != by_held[False]
    assert _ways(bodies[NO_CTL]) == by_held[False]
    assert _ways(bodies[WITH_CTL]) == by_held[True]
    assert "lab rollback" in bodies[NO_CTL] and "lab rollback" not in bodies[WITH_CTL]
