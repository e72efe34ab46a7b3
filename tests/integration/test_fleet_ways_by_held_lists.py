"""A fleet's ways out are grouped by the lists its phones hold, as one phone's are
(``phone.ways_out.ways_group``; ``fleet boot``, ``predict --fleet-flash``, ``phone show --fleet-flash``,
``replay --all``).

Two phones boot on a lab before it goes to mixed mode (an ITL only), two after (a CTL and an ITL); all four
are then moved to another, non-secure lab, TVS unreachable: each refuses its ITL under the same rule
(``G.3.4-tvs-unreachable``). Was: one group by rule, kind and code, told the table's ways, ``lab rollback
OLD on`` among them, also to the phones holding a CTL, which the rollback ITL does not blank (spec §G.3
note). Now two groups, each with its own ways, in JSON and text alike; a record keeps what its phone holds
in a shared value (three bits: a slot), and the groups cross a shard's pipe. Neither group is offered the
new lab's bulk ITL reset (walk s41): its CallManager certificate, which signs the reset ITL, is in no list
the moved phones hold (``reset_signer_held: false``; was ``lab itl-reset`` first, "their own cluster").
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.commands._replay_all import _boot_record, fleet_doc, fleet_text, phone_record
from phoneemu.fleet.metrics import BootRecord, FleetMetrics
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone.ways_out import HeldLists, ways_out
from tests.helpers import boot_offline_into, run

NOW = 1_780_000_000
NO_CTL = ["0A0000002801", "0A0000002802"]  # booted before mixed mode: an ITL only
WITH_CTL = ["0A0000002811", "0A0000002812"]  # booted in mixed mode: a CTL and an ITL
RULE = "G.3.4-tvs-unreachable"
ROLLBACK = "phoneemu lab rollback OLD on"
HOLDING_NO_CTL = {"ctl": False, "empty_itl": False, "reset_signer_held": False}
HOLDING_A_CTL = {"ctl": True, "empty_itl": False, "reset_signer_held": False}


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Any]]:
    """The fleet's flashes before the move, the new lab's TFTP root and the boot reports of the move
    (the flashes are copied first: ``predict`` reads them as they were)."""
    tmp = tmp_path_factory.mktemp("held-groups")
    old = LabCluster.init(tmp / "old", seed=28, key_spec="rsa1024", now=NOW, name="old")
    old.add_phones([*NO_CTL, *WITH_CTL], now=NOW)
    fleet = tmp / "fleet"
    run(boot_offline_into(fleet, old, NO_CTL, now=NOW))
    old.set_mixed_mode(True, now=NOW)
    run(boot_offline_into(fleet, old, WITH_CTL, now=NOW))
    new = LabCluster.init(tmp / "new", seed=29, key_spec="rsa1024", now=NOW, name="new")
    new.add_phones([*NO_CTL, *WITH_CTL], now=NOW)
    before = tmp / "before"
    shutil.copytree(fleet, before)
    reports = run(boot_offline_into(fleet, new, [*NO_CTL, *WITH_CTL], now=NOW))
    assert all(r.locked_out and r.deciding.rule == RULE and r.deciding.kind == "ITL" for r in reports)
    return before, tmp / "new" / "tftp", reports


def _two_groups(doc: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The group of the phones without a CTL and that of those holding one, each of two phones."""
    assert [(g["rule"], g["kind"], g["phones"]) for g in doc] == [(RULE, "ITL", 2), (RULE, "ITL", 2)]
    plain, ctl = doc
    assert plain["held"] == HOLDING_NO_CTL and ctl["held"] == HOLDING_A_CTL
    # the rule's ways, the rollback among them (after bringing TVS back), the bulk ITL reset not: the new
    # lab's CallManager certificate, which signs it, is in no list the moved phones hold (walk s41)
    assert [w["lab"] for w in plain["ways"]][1] == ROLLBACK
    assert ROLLBACK not in [w["lab"] for w in ctl["ways"]]
    assert not any("itl-reset" in w["lab"] for g in (plain, ctl) for w in g["ways"])
    for group, has_ctl in ((plain, False), (ctl, True)):
        held = HeldLists.of(ctl=has_ctl, empty_itl=False, reset_untrusted=True)
        assert [w["scenario"] for w in group["ways"]] == [w.scenario
                                                          for w in ways_out(RULE, "ITL", held=held)]
    return plain, ctl


def _text_groups(text: str) -> tuple[str, str]:
    """The text of each group's ways (the one without a CTL first)."""
    untrusted = "not the signer of the ITL reset; 2 phones locked out):"
    plain_head = f"ways out of {RULE} (ITL, holding no CTL, {untrusted}"
    ctl_head = f"ways out of {RULE} (ITL, holding a CTL, {untrusted}"
    assert plain_head in text and ctl_head in text, text
    plain = text.split(plain_head, 1)[1].split("ways out of", 1)[0]
    ctl = text.split(ctl_head, 1)[1].split("ways out of", 1)[0]
    assert "lab rollback" in plain and "lab rollback" not in ctl
    assert "itl-reset" not in plain and "itl-reset" not in ctl
    return plain, ctl


def test_fleet_summary_groups_by_the_lists_held(moved: tuple[Path, Path, list[Any]]) -> None:
    """``fleet boot``: each record keeps what its phone holds (through the shard's pipe, JSON lines and
    its metrics' state), the summary two groups."""
    _before, _root, reports = moved
    shard = FleetMetrics()
    for report in reports:
        rec = BootRecord.from_dict(BootRecord.of(report, latency_s=0.01, end_s=0.02).as_dict())
        # shared, not a copy
        assert rec.held is HeldLists.of(ctl=report.mac in WITH_CTL, empty_itl=False, reset_untrusted=True)
        shard.add(rec)
    metrics = FleetMetrics.from_state(shard.to_state())
    _two_groups(metrics.summary()["ways_out"])
    _text_groups(metrics.render({"DIR": "/tmp/new"}))


def test_predict_fleet_flash_groups_by_the_lists_held(moved: tuple[Path, Path, list[Any]], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """``predict --fleet-flash``: two groups; each phone refers to its own."""
    before, root, _reports = moved
    out = tmp_path / "predict.json"
    assert main(["predict", "--fleet-flash", str(before), "--now", str(NOW), "--json-file", str(out),
                 str(root)]) == 1
    _text_groups(capsys.readouterr().out)
    doc = json.loads(out.read_text())
    _two_groups(doc["ways_out"])
    refs = {p["mac"]: p["ways_out_ref"] for p in doc["phones"]}
    assert refs == {**dict.fromkeys(NO_CTL, 0), **dict.fromkeys(WITH_CTL, 1)}


def test_phone_show_fleet_flash_groups_by_the_lists_held(moved: tuple[Path, Path, list[Any]],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """``phone show --fleet-flash`` of the flashes the move left: two groups, text and JSON."""
    before, _root, _reports = moved
    fleet = before.parent / "fleet"
    assert main(["phone", "show", "--fleet-flash", str(fleet), "--json"]) == 0
    _two_groups(json.loads(capsys.readouterr().out)["ways_out"])
    assert main(["phone", "show", "--fleet-flash", str(fleet)]) == 0
    _text_groups(capsys.readouterr().out)


def test_replay_all_groups_by_the_lists_held(moved: tuple[Path, Path, list[Any]]) -> None:
    """``replay --all``: each boot's record keeps what its phone holds; two groups."""
    _before, _root, reports = moved
    records = []
    for report in reports:
        result = SimpleNamespace(report=report, boot=SimpleNamespace(start=0.0, server="127.0.0.1"),
                                 not_captured=(), sip=())
        records.append(phone_record(SimpleNamespace(mac=report.mac, profile="cp-8861", skipped=None, notes=(),
                                                    results=[_boot_record(result)])))
    doc = fleet_doc(records)
    _two_groups(doc["ways_out"])
    _text_groups(fleet_text(doc, "replay"))
