"""A locked phone's ways out agree in text and JSON, by the lists it holds (``phoneemu.phone.ways_out``).

Was: ``boot`` and ``phone show`` read the lists from the flash for the text (fc12a21: a phone holding a CTL
is not told the ways through the rollback ITL), while ``boot --json`` (``BootReport.as_dict``) and ``phone
show --json`` gave the table's ways, ``lab rollback ... on`` among them; ``phone show`` said "Trust List
update failed (a trust list refused)" for a refused config (``locked_by`` empty); and a phone holding a CTL
and the rollback ITL, moved to another secure cluster, was told no way back to its old cluster's TVS.
The phones boot on the lab's files in memory (no TVS is asked: the rollback ITL names none).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone import ways_out as wo
from tests.helpers import boot_into_flash

NOW = 1_780_000_000
MAC = "0A0000000001"


def _lab(root: Path, name: str, seed: int) -> LabCluster:
    lab = LabCluster.init(root, seed=seed, name=name, key_spec="rsa1024", now=NOW)
    lab.add_phone(MAC, now=NOW)
    lab.set_mixed_mode(True, now=NOW)
    return lab


def _holding_ctl_and_rollback_itl(tmp_path: Path) -> tuple[LabCluster, Path]:
    """A phone of a mixed-mode lab that took the rollback ITL (its CTL kept, spec §G.3 note)."""
    old = _lab(tmp_path / "old", "old", 31)
    flash = tmp_path / "ph1"
    assert boot_into_flash(old, flash, MAC, now=NOW).ok
    old.set_rollback(True, now=NOW)
    assert boot_into_flash(old, flash, MAC, now=NOW).trust["ITL"] == "empty"
    assert wo.held_lists(flash) == wo.HeldLists(ctl=True, empty_itl=True)
    return old, flash


def _labs(lines: list[str]) -> list[str]:
    return [line.split("lab: ", 1)[1].split("   rehearse", 1)[0] for line in lines if "  lab: " in line]


def _show(flash: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, dict[str, Any]]:
    assert main(["phone", "show", "--flash", str(flash)]) == 0
    text = capsys.readouterr().out
    assert main(["phone", "show", "--flash", str(flash), "--json"]) == 0
    return text, json.loads(capsys.readouterr().out)


def test_a_refused_config_s_ways_agree_in_text_and_json(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The cluster leaves mixed mode with the rollback on: the phone refuses its config
    (``G.4-reject-unknown-signer``); ``boot --json`` and ``phone show --json`` say the text's ways."""
    old, flash = _holding_ctl_and_rollback_itl(tmp_path)
    old.set_mixed_mode(False, now=NOW)
    report = boot_into_flash(old, flash, MAC, now=NOW)
    assert report.locked_out and report.deciding is not None
    assert report.deciding.rule == "G.4-reject-unknown-signer"
    # the text as boot --flash prints it: the lists read from the flash
    text = wo.way_out_lines(report.deciding.rule, report.deciding.kind, fill={"FLASH": str(flash)})
    doc = report.as_dict()["ways_out"]
    assert [w["lab"].replace("FLASH", str(flash)) for w in doc] == _labs(text)
    assert [w["lab"] for w in doc] == ["phoneemu lab rollback DIR off", "phoneemu phone erase --flash FLASH"]

    shown, info = _show(flash, capsys)
    assert info["locked_by"] == [] and info["locked"] is True
    assert [w["lab"].replace("FLASH", str(flash)) for w in info["ways_out"]] == _labs(shown.splitlines())
    assert not any(w["lab"].endswith(" on") for w in info["ways_out"])
    # what was refused: the config, not "a trust list"
    assert "a trust list refused" not in shown
    assert f"Config refused (SEP{MAC}.cnf.xml.sgn, G.4-reject-unknown-signer)" in shown


def test_a_phone_holding_the_rollback_itl_moved_is_told_the_way_back_to_its_old_tvs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Moved to another secure cluster, it refuses the new CTL (no TVS to ask: the rollback ITL blanks
    it): first the way back — rollback off on the old cluster, a reset there, the bulk export, the move
    — not the bulk export alone, whose TVS it cannot ask; text and JSON alike."""
    _old, flash = _holding_ctl_and_rollback_itl(tmp_path)
    new = _lab(tmp_path / "new", "new", 32)
    report = boot_into_flash(new, flash, MAC, now=NOW)
    assert report.locked_out and report.deciding is not None
    assert (report.deciding.rule, report.deciding.kind) == ("G.3.5-reject-unknown-signer", "CTL")
    doc = report.as_dict()["ways_out"]
    assert doc[0]["lab"] == ("phoneemu lab rollback OLD off && phoneemu boot --lab OLD --flash FLASH && "
                             "phoneemu lab exchange OLD NEW && phoneemu lab restart-tvs OLD && "
                             "phoneemu boot --lab NEW --flash FLASH")
    assert doc[-1]["lab"] == "phoneemu phone erase --flash FLASH"
    shown, info = _show(flash, capsys)
    assert [w["lab"] for w in info["ways_out"]] == [w["lab"] for w in doc]
    assert [w["lab"].replace("FLASH", str(flash)) for w in info["ways_out"]] == _labs(shown.splitlines())
    assert "Trust List update failed (CTL" in shown
    # ITL kind too; a CTL without the rollback ITL keeps the table's ways (the bulk export first)
    itl = wo.ways_out("G.3.4-tvs-unknown-signer", "ITL", held=wo.HeldLists(ctl=True, empty_itl=True))
    assert itl[0].lab.startswith("phoneemu lab rollback OLD off")
    assert all("exchange" not in w.lab for w in itl[1:])
    assert wo.ways_out("G.3.4-tvs-unknown-signer", "CTL", held=wo.HeldLists(ctl=True, empty_itl=False)) == \
        wo.WAYS_BY_KIND["CTL"]["G.3.4-tvs-unknown-signer"]


def test_lab_rollback_and_exchange_say_what_phones_holding_a_ctl_meet(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``lab rollback DIR on`` where a CTL is served, and ``lab exchange`` with such a cluster, say on
    stderr that the rollback ITL leaves the phones holding the CTL no TVS (spec G.3 note, B.7)."""
    old = _lab(tmp_path / "old", "old", 31)
    _lab(tmp_path / "new", "new", 32)
    assert main(["lab", "rollback", str(old.root), "on"]) == 0
    err = capsys.readouterr().err
    assert "phoneemu lab rollback: note: this cluster serves a CTL" in err
    assert f"phoneemu lab rollback {old.root} off" in err
    assert main(["lab", "exchange", str(old.root), str(tmp_path / "new")]) == 0
    err = capsys.readouterr().err
    assert "phoneemu lab exchange: note: old serves the rollback ITL and a CTL" in err
    assert main(["lab", "rollback", str(old.root), "off"]) == 0
    assert main(["lab", "exchange", str(old.root), str(tmp_path / "new")]) == 0
    assert capsys.readouterr().err == ""
