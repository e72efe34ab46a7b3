"""``phoneemu predict`` as a migration planner meets it (fully offline): the phone predicted without
``--mac`` is the one whose installed config is given; a fleet's verdict and JUnit report say which
entries were not predicted, each named as its folder."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import boot_offline_into, run

NOW = 1_780_000_000
MACS = ["0A00000000A1", "0A00000000A2"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The fleet's flash folder (both phones on the lab's ITL) and the lab's TFTP root."""
    tmp = tmp_path_factory.mktemp("walk")
    c = LabCluster.init(tmp / "lab", seed=43, key_spec="rsa1024", now=NOW, name="w")
    c.add_phones(MACS, now=NOW)
    fleet = tmp / "fleet"
    for report in run(boot_offline_into(fleet, c, MACS, now=NOW)):
        assert report.ok
    return fleet, tmp / "lab" / "tftp"


def test_mac_defaults_to_the_installed_configs(lab: tuple[Path, Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Without --mac, an installed SEP<MAC> config names the phone, not the lowest MAC of the new files."""
    _fleet, root = lab
    rc = main(["predict", "--installed-itl", str(root / "ITLFile.tlv"), "--installed-config",
               str(root / f"SEP{MACS[1]}.cnf.xml.sgn"), "--now", str(NOW), "--json", str(root)])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert doc["mac"] == MACS[1]
    assert doc["report"]["config_file"] == f"SEP{MACS[1]}.cnf.xml.sgn"


def test_fleet_verdict_and_junit_name_the_skipped_entries(lab: tuple[Path, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A skipped entry is not counted as a phone that would not lock out, and its JUnit case is named as
    its folder (a copy of a flash naming a MAC already predicted is no second case of that MAC)."""
    fleet, root = lab
    fleet = Path(shutil.copytree(fleet, tmp_path / "fleet"))
    shutil.copytree(fleet / MACS[0], fleet / "copy-of-a1")
    junit = tmp_path / "p.xml"
    rc = main(["predict", "--fleet-flash", str(fleet), "--now", str(NOW), "--junit", str(junit), str(root)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "result: no predicted phone would lock out (2 of 2 accepted; 1 entry not predicted (skipped))" \
        in out
    names = [str(case.get("name")) for case in ET.parse(junit).iter("testcase")]
    assert sorted(names) == sorted([*MACS, "copy-of-a1"])


def test_inspect_notes_a_trust_list_phones_refuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An ITL above 64 KiB, read with a raised --limit, is said to be one that phones reject (the check of
    its signature alone would read as a file fit to serve)."""
    c = LabCluster.init(tmp_path / "lab", seed=44, key_spec="rsa1024", now=NOW, name="big")
    c.add_certs(80, now=NOW)
    itl = tmp_path / "lab" / "tftp" / "ITLFile.tlv"
    assert itl.stat().st_size > 65536
    rc = main(["inspect", str(itl), "--limit", str(1 << 20), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert any("phones reject it (G.3.1-oversize)" in n for n in doc["notes"])
