"""The ways out follow the lists the locked phone holds (``phoneemu.phone.ways_out.held_lists``).

Was: after ``lab rollback DIR on``, a phone holding a CTL and the rollback ITL whose config was refused
(``G.4-reject-unknown-signer``: the cluster left mixed mode, its CTL now names no TFTP record) was told
first "Prepare Cluster for Rollback ... ``lab rollback ... on``" twice (central TFTP, old cluster) -
the rollback already on, and of no help to a phone holding a CTL (spec §G.3 note) - then the bulk ITL
reset, which serves an empty ITL again while the rollback is on. ``boot --flash`` and ``phone show
--flash`` give ``way_out_lines`` the flash (``fill["FLASH"]``): the lists are read from it.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from phoneemu.cli import build_parser
from phoneemu.formats import trustlist
from phoneemu.phone import ways_out as wo
from phoneemu.phone.ways_out import WAYS_BY_KIND, way_out_lines, ways_out, ways_out_json
from tests.unit.test_rules import NOW, ctl_a, ident, itl_a, tl

CONFIG_RULE = "G.4-reject-unknown-signer"


def _flash(tmp_path: Path, *, ctl: bool, empty_itl: bool, name: str = "flash") -> Path:
    """A phone's flash holding the lab-style lists: a CTL or not, the full or the rollback ITL."""
    flash = tmp_path / name
    flash.mkdir()
    itl = itl_a()
    if empty_itl:
        records = list(trustlist.rollback_records(trustlist.parse(itl).records))
        itl = tl("ITL", ident("recovery-a"), records, ts=NOW + 5)
    (flash / "ITLFile.tlv").write_bytes(itl)
    if ctl:
        (flash / "CTLFile.tlv").write_bytes(ctl_a())
    return flash


def _lab_commands(lines: list[str]) -> list[str]:
    return [line.split("lab: ", 1)[1].split("   rehearse", 1)[0] for line in lines if "  lab: " in line]


def test_a_phone_holding_a_ctl_and_the_rollback_itl_is_told_to_turn_the_rollback_off(tmp_path: Path) -> None:
    """The symptom as ``boot --flash`` and ``phone show --flash`` print it (the existing API, the flash in
    ``fill``)."""
    flash = _flash(tmp_path, ctl=True, empty_itl=True)
    lines = way_out_lines(CONFIG_RULE, "config", fill={"DIR": "/tmp/lab", "FLASH": str(flash)})
    commands = _lab_commands(lines)
    assert commands == ["phoneemu lab rollback /tmp/lab off", f"phoneemu phone erase --flash {flash}"], lines
    assert not any("rollback" in c and c.endswith(" on") for c in commands)
    assert "Prepare Cluster for Rollback to pre-8.0 back to False" in lines[0]


def test_a_phone_holding_a_ctl_is_not_told_the_ways_through_the_rollback_itl(tmp_path: Path) -> None:
    """Its full ITL: the rollback ways left out, the bulk ITL reset kept, erasing the lists last."""
    flash = _flash(tmp_path, ctl=True, empty_itl=False)
    lines = way_out_lines(CONFIG_RULE, "config", fill={"FLASH": str(flash)})
    commands = _lab_commands(lines)
    assert not any(" rollback " in f" {c} " for c in commands), lines
    assert commands[0].startswith("phoneemu lab itl-reset DIR localkey")
    assert commands[-1] == f"phoneemu phone erase --flash {flash}"
    for rule in ("G.3.4-tvs-unknown-signer", "G.3.5-reject-unknown-signer"):
        ways = ways_out(rule, "ITL", held=wo.HeldLists(ctl=True, empty_itl=False))
        assert [w.scenario for w in ways if "rollback" in w.lab] == [], rule


def test_without_a_ctl_or_not_known_the_ways_are_the_table_s(tmp_path: Path) -> None:
    """A phone without a CTL (the rollback ITL helps it), a flash not kept, a fleet: as before."""
    flash = _flash(tmp_path, ctl=False, empty_itl=False)
    assert wo.held_lists(flash) == wo.HeldLists(ctl=False, empty_itl=False)
    table = WAYS_BY_KIND["config"][CONFIG_RULE]
    assert ways_out(CONFIG_RULE, "config", held=wo.held_lists(flash)) == table
    assert ways_out(CONFIG_RULE, "config") == table
    assert wo.held_lists(tmp_path / "absent") is None
    assert wo.held_lists(_flash(tmp_path, ctl=True, empty_itl=False, name="full")) == \
        wo.HeldLists(ctl=True, empty_itl=False)
    with_ctl = _flash(tmp_path, ctl=True, empty_itl=True, name="with-ctl")
    fleet = way_out_lines(CONFIG_RULE, "config", fill={"FLASH": str(with_ctl)}, fleet=True)
    assert "lab rollback CENTRAL on" in fleet[1]  # a fleet's phones may differ: the table's ways


def test_the_json_takes_the_held_lists_and_the_new_command_runs(tmp_path: Path) -> None:
    held = wo.HeldLists(ctl=True, empty_itl=True)
    doc = ways_out_json(CONFIG_RULE, "config", held=held)
    assert [w["lab"] for w in doc] == ["phoneemu lab rollback DIR off", "phoneemu phone erase --flash FLASH"]
    assert doc[0]["scenario"] == "rollback-switch-back"
    assert (Path(__file__).parents[2] / "scenarios" / "rollback-switch-back.yaml").is_file()
    build_parser().parse_args(shlex.split(doc[0]["lab"].replace("DIR", str(tmp_path)))[1:])
    # a damaged CTL is not loaded by the boot: not held
    flash = _flash(tmp_path, ctl=True, empty_itl=True)
    (flash / "CTLFile.tlv").write_bytes(b"\x01\x02garbage")
    assert wo.held_lists(flash) == wo.HeldLists(ctl=False, empty_itl=True)
