"""``phoneemu phone show|erase|factory-reset --fleet-flash DIR``: a fleet's flashes at once.

Three phones boot on the lab's first ITL; ITLRecovery is regenerated while TVS cannot be reached, so
those three lock out at their next boot while two new phones take the new ITL on first use. ``phone
show --fleet-flash`` groups them by the ITL each holds against the lab's current one (match /
mismatch, CUCM's ITL File Status) and by how each last boot ended, with the ways out written for the
fleet; ``phone erase --fleet-flash`` is the last of them, and after it every phone takes the ITL.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import boot_offline_into, run

NOW = 1_780_000_000
OLD = [f"0A00000000E{i}" for i in range(1, 4)]
NEW = ["0A00000000F1", "0A00000000F2"]


@pytest.fixture()
def fleet(tmp_path: Path) -> tuple[Path, LabCluster]:
    c = LabCluster.init(tmp_path / "lab", seed=43, key_spec="rsa1024", now=NOW, name="c")
    c.add_phones([*OLD, *NEW], now=NOW)
    folder = tmp_path / "fleet"
    assert all(r.ok for r in run(boot_offline_into(folder, c, OLD, now=NOW)))
    c.regenerate("itlrecovery", now=NOW)
    assert all(r.locked_out for r in run(boot_offline_into(folder, c, OLD, now=NOW)))  # TVS unreachable
    assert all(r.trust["ITL"] == "installed" for r in run(boot_offline_into(folder, c, NEW, now=NOW)))
    return folder, c


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes(), usedforsecurity=False).hexdigest()


def test_show_groups_the_phones_by_the_itl_they_hold_and_their_last_boot(
        fleet: tuple[Path, LabCluster], capsys: pytest.CaptureFixture[str]) -> None:
    folder, c = fleet
    current = c.checksums("ITL")
    assert current is not None
    old = _sha1(folder / OLD[0] / "ITLFile.tlv")  # a cp-8861 shows SHA-1
    assert old != current["sha1"]
    assert main(["phone", "show", "--fleet-flash", str(folder), "--cluster", str(c.root)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"fleet {folder}: 5 phones' flashes, 0 entries skipped\n")
    assert "models:" not in out  # one model: no line for it
    assert f"(the checksum each phone shows; {c.root} serves sha1 {current['sha1']}):" in out
    assert f"  sha1 {old}      3  does not match {c.root}  {' '.join(OLD)}\n" in out
    assert f"  sha1 {current['sha1']}      2  matches {c.root}  {' '.join(NEW)}\n" in out
    assert f"locked out G.3.4-tvs-unreachable (ITL)      3  {' '.join(OLD)}" in out
    assert f"lab: phoneemu lab service {c.root} tvs start" in out  # the lab folder filled in
    assert f"lab: phoneemu phone erase --fleet-flash {folder}   rehearse:" in out  # for the whole fleet

    # the files a real cluster serves (tftp get) in place of a lab: the same statuses
    assert main(["phone", "show", "--fleet-flash", str(folder), "--cluster", str(c.root / "tftp"),
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["phones"] == 5 and doc["lab"] is None and doc["models"] == {"cp-8861": 5}
    assert {r["mac"]: r["itl_status"] for r in doc["records"]} == {
        **dict.fromkeys(OLD, "mismatch"), **dict.fromkeys(NEW, "match")}
    assert {r["mac"]: r["ctl_status"] for r in doc["records"]} == dict.fromkeys([*OLD, *NEW], "not-installed")
    assert doc["ways_out"][0]["ways"][-1]["lab"] == "phoneemu phone erase --fleet-flash FLEET"

    # no cluster given: the groups without a status
    assert main(["phone", "show", "--fleet-flash", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "match" not in out and f"  sha1 {old}      3  {' '.join(OLD)}" in out


def test_erase_of_a_fleet_is_the_last_way_out(fleet: tuple[Path, LabCluster],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    folder, c = fleet
    (folder / "notes.txt").write_text("not a phone")
    assert main(["phone", "erase", "--fleet-flash", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"Erasing CTL and ITL files: 5 phones ({folder}/<MAC>)" in out
    assert "skipped: 1\n  notes.txt: not a folder (not a phone's flash)" in out
    assert not any((folder / mac / "ITLFile.tlv").exists() for mac in [*OLD, *NEW])
    assert all(r.ok and r.trust["ITL"] == "installed"  # TVS still unreachable: trusted on first use
               for r in run(boot_offline_into(folder, c, OLD, now=NOW)))
    assert main(["phone", "show", "--fleet-flash", str(folder), "--cluster", str(c.root), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(g["status"], g["count"]) for g in doc["itl"]] == [("match", 3), ("not-installed", 2)]
    assert main(["phone", "factory-reset", "--fleet-flash", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"Factory reset: everything but the MIC erased: 5 phones ({folder}/<MAC>)" in out


def test_a_fleet_folder_is_not_one_phone_and_bad_options_are_one_line(
        fleet: tuple[Path, LabCluster], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, c = fleet
    for action in ("show", "erase", "factory-reset"):
        assert main(["phone", action, "--flash", str(folder)]) == 2
        err = capsys.readouterr().err
        assert f"{folder}: holds phones' flashes ({folder}/<MAC>, as fleet boot --flash keeps them), not " \
               f"one: give one of them as --flash, or all with --fleet-flash {folder}" in err
    assert main(["phone", "show", "--flash", str(folder / OLD[0]), "--cluster", str(c.root)]) == 2
    assert "--cluster goes with --fleet-flash" in capsys.readouterr().err
    for cluster, said in ((tmp_path / "nowhere", "not a folder"),
                          (folder, "holds neither ITLFile.tlv nor CTLFile.tlv")):
        assert main(["phone", "show", "--fleet-flash", str(folder), "--cluster", str(cluster)]) == 2
        assert said in capsys.readouterr().err
    assert main(["phone", "erase", "--fleet-flash", str(tmp_path / "none")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["phone", "erase", "--fleet-flash", str(c.root)]) == 2  # a lab is no fleet: nothing erased
    assert f"{c.root}: no phone's flash in it" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["phone", "show", "--fleet-flash", str(empty)]) == 2
    assert "empty (no phone flash folder in it)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["phone", "set-key", "--fleet-flash", str(folder), "00" * 16])
    assert exc.value.code == 2
    assert main(["phone", "show", "--fleet-flash", str(folder), "--profile", "cp-9999"]) == 2
