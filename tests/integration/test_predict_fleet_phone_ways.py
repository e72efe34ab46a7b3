"""``predict --fleet-flash --json-file``: each locked-out phone's record says its ways out (fully offline).

Four emulated phones boot into their own flash folders: three on the cluster's first ITL, one after
ITLRecovery was regenerated; then CallManager is regenerated. In the TFTP root after the change the
third old phone's own ``ITLSEP<MAC>.tlv`` is damaged: two phones lock out on ``G.3.4-tvs-unreachable``
(ways out), one on ``G.3.1-malformed`` (no documented way out), the newer one accepts. A phone's record
refers to its group of the summary's ``ways_out`` (``ways_out_ref``: the ways are written once per group,
not per phone) and has ``no_way_out`` as its one-phone ``predict --json`` report gives it.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone.ways_out import NO_WAY_OUT
from phoneemu.scenario.predict import FleetPhone
from tests.helpers import boot_offline_into, run

NOW = 1_780_000_000
OLD = ["0A00000000E1", "0A00000000E2", "0A00000000E3"]  # booted on the first ITL
NEW = "0A00000000F1"  # booted after ITLRecovery was regenerated
DAMAGED = OLD[2]  # its own ITLSEP<MAC>.tlv in the new root does not parse


@pytest.fixture(scope="module")
def fleet_and_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The fleet's flash folder and the new TFTP root (one phone's ITL damaged)."""
    tmp = tmp_path_factory.mktemp("phone-ways")
    c = LabCluster.init(tmp / "lab", seed=43, key_spec="rsa1024", now=NOW, name="c")
    c.add_phones([*OLD, NEW], now=NOW)
    fleet = tmp / "fleet"
    run(boot_offline_into(fleet, c, OLD, now=NOW))
    c.regenerate("itlrecovery", now=NOW)
    run(boot_offline_into(fleet, c, [NEW], now=NOW))
    c.regenerate("callmanager", now=NOW)
    root = tmp / "new"
    shutil.copytree(tmp / "lab" / "tftp", root)
    (root / f"ITLSEP{DAMAGED}.tlv").write_bytes((root / "ITLFile.tlv").read_bytes()[:300])
    return fleet, root


def _one_phone_report(flash: Path, root: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """``predict --flash FLASH --json``'s boot report of the same phone on the same files."""
    assert main(["predict", "--flash", str(flash), "--now", str(NOW), "--json", str(root)]) == 1
    report: dict[str, Any] = json.loads(capsys.readouterr().out)["report"]
    return report


def _without_lab(ways: list[dict[str, str]]) -> list[dict[str, str]]:
    """Ways out apart from their lab command and its filled-in ``run`` (a group's are for the fleet, a
    phone's for its flash; a fleet's JSON fills its ways in, as ``fleet boot --json``'s)."""
    return [{k: v for k, v in w.items() if k not in ("lab", "run")} for w in ways]


def test_each_locked_phone_refers_to_its_ways_and_says_no_way_out(
        fleet_and_root: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet, root = fleet_and_root
    out_json = tmp_path / "predict.json"
    assert main(["predict", "--fleet-flash", str(fleet), "--now", str(NOW), "--json-file", str(out_json),
                 str(root)]) == 1
    capsys.readouterr()
    doc = json.loads(out_json.read_text())
    groups = [(g["rule"], g["kind"], g["phones"]) for g in doc["ways_out"]]
    assert groups == [("G.3.4-tvs-unreachable", "ITL", 2), ("G.3.1-malformed", "ITL", 1)]
    phones = {p["mac"]: p for p in doc["phones"]}
    for mac in OLD:  # the same ways and the same why as its one-phone report, by reference to its group
        phone = phones[mac]
        assert "deciding" in phone and "decisions" in phone and "notes" in phone  # existing keys kept
        one = _one_phone_report(fleet / mac, root, capsys)
        group = doc["ways_out"][phone["ways_out_ref"]]
        assert (group["rule"], group["kind"]) == (phone["deciding"]["rule"], phone["deciding"]["kind"])
        assert _without_lab(group["ways"]) == _without_lab(one["ways_out"])
        assert phone["no_way_out"] == one["no_way_out"] == group["no_way_out"]
    assert phones[OLD[0]]["ways_out_ref"] == phones[OLD[1]]["ways_out_ref"] == 0
    assert phones[OLD[0]]["no_way_out"] is None and doc["ways_out"][0]["ways"]
    assert phones[DAMAGED]["ways_out_ref"] == 1
    assert phones[DAMAGED]["no_way_out"] == NO_WAY_OUT[("ITL", "G.3.1-malformed")]
    accepted = phones[NEW]
    assert accepted["outcome"] == "accepted"
    assert (accepted["ways_out_ref"], accepted["no_way_out"]) == (None, None)


def test_a_reason_code_that_chooses_the_ways_is_its_own_reference() -> None:
    """A QUERY too large (reason code too-large under a -tvs-unreachable rule) is a group of its own in
    the summary (ways_out.ways_key): its phones refer to that group, the others to the rule's."""
    from phoneemu.commands.predict import _fleet_doc

    def locked(mac: str, code: str) -> FleetPhone:
        deciding = {"rule": "G.3.4-tvs-unreachable", "kind": "ITL", "reason_code": code}
        return FleetPhone(entry=mac, mac=mac, profile="cp-8861", outcome="locked out",
                          rule="G.3.4-tvs-unreachable", detail={"mac": mac, "deciding": deciding})

    phones = [locked("0A0000000001", "too-large"), locked("0A0000000002", "tvs-unreachable"),
              locked("0A0000000003", "tvs-unreachable")]
    args = argparse.Namespace(fleet_flash=Path("fleet"), models=None, files=[Path("new")], tvs_cert=[],
                              tvs_reachable=False)
    doc = _fleet_doc(args, NOW, phones, None, source="fleet")
    assert [(g["reason_code"], g["phones"]) for g in doc["ways_out"]] == [(None, 2), ("too-large", 1)]
    refs = {p["mac"]: p["ways_out_ref"] for p in doc["phones"]}
    assert refs == {"0A0000000001": 1, "0A0000000002": 0, "0A0000000003": 0}
