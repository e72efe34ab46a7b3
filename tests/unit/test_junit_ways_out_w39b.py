"""JUnit failure bodies of a lockout (task W2, s39): ``replay --all --junit``'s carry the ways out (was none),
``fleet boot --junit``'s the legend of the placeholders they leave (was ``OLD`` bare), a field without a
value reads ``none`` (was ``notes: ``); the legend and the ways cost a look-up per locked phone, not a table
walk, a shell split per way and an address parsed (40,000 phones: seconds)."""

from __future__ import annotations

import shlex
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import phoneemu.values
from phoneemu.commands._replay_all import write_junit
from phoneemu.commands.fleet import _write_junit
from phoneemu.fleet.junit import field_lines
from phoneemu.fleet.metrics import BootRecord
from phoneemu.phone import ways_out
from phoneemu.phone.ways_out import (
    NOT_A_LAB,
    HeldLists,
    phone_placeholders_left,
    tvs_back_fill,
    way_out_lines,
)

UNKNOWN = "G.3.4-tvs-unknown-signer"  # its ways leave OLD (the bulk export, the rollback) with DIR filled
UNREACHABLE = "G.3.4-tvs-unreachable"
OLD_SAID = ("OLD: the lab folder of the cluster the phones left (not known to fleet boot: --lab names the "
            "cluster it boots against, not the one they left)")
NO_ANSWER = "TVS unreachable: no TVS server answered: 10.9.9.9:2445: connection refused"


def _failures(report: Path) -> list[str]:
    return [f.text or "" for f in ET.parse(report).getroot().iter("failure")]


def test_a_field_without_a_value_reads_none() -> None:
    """No notes, no lists held, None: one rule, ``none`` (was ``notes: `` and ``held: `` for the first)."""
    assert field_lines({"notes": [], "held": {}, "files": (), "signer": None}) == [
        "notes: none", "held: none", "files: none", "signer: none"]
    assert field_lines({"notes": ["a", "b"], "held": {"ctl": False}}) == ["notes: a; b", "held: ctl no"]


def test_fleet_junit_ends_a_lockout_with_the_legend(tmp_path: Path) -> None:
    """``fleet boot --lab DIR --junit``: OLD left in the bulk export and the rollback, said once at the end,
    in the summary's words."""
    rec = BootRecord(mac="0A0000000B01", outcome="locked-out", rule=UNKNOWN, latency_s=0.1, end_s=0.2,
                     reason="TVS does not know the signer", kind="ITL", held=HeldLists.of(False, False))
    result = SimpleNamespace(records=[rec], not_started=0, lost=[], metrics=SimpleNamespace(wall_s=0.2))
    out = tmp_path / "j.xml"
    _write_junit(out, result, target="127.0.0.1", count=1, lab=tmp_path / "lab")
    (body,) = _failures(out)
    assert "phoneemu lab rollback OLD on" in body, body
    assert body.splitlines()[-1] == OLD_SAID, body


def _boot(outcome: str, rule: str, reason: str | None = None, server: str = "10.0.0.5") -> dict[str, Any]:
    """A boot's record as ``replay --all`` keeps it (``_boot_record``)."""
    boot: dict[str, Any] = {"start": 0.0, "server": server, "outcome": outcome, "rule": rule,
                            "config": "none", "itl": "rejected", "ctl": None, "tvs_used": False,
                            "signed_by_lab": None}
    if outcome != "ok":
        boot |= {"reason": reason or "why", "kind": "ITL", "held": {"ctl": False, "empty_itl": False}}
    return boot


def _phone(mac: str, *boots: dict[str, Any]) -> dict[str, Any]:
    return {"mac": mac, "profile": "cp-8861", "outcome": boots[-1]["outcome"], "rule": boots[-1]["rule"],
            "boots": list(boots), "notes": []}


def test_replay_all_junit_says_the_ways_out_of_the_last_lockout(tmp_path: Path) -> None:
    """A phone whose last boot locked out: that lockout's ways, one phone's commands (its flash filled in
    from ``--fleet-flash``, its own), bringing TVS back for OLD when its TVS is not at the address it booted
    against, then the legend; a phone whose boots ended ok: none; a phone whose message names an earlier
    boot: the ways say which boot they are for."""
    flashes = tmp_path / "flashes"
    (flashes / "0A0000000C01").mkdir(parents=True)
    records = [_phone("0A0000000C01", _boot("locked-out", UNREACHABLE, NO_ANSWER)),
               _phone("0A0000000C02", _boot("locked-out", UNKNOWN), _boot("ok", "G.4-signed-by-itl-tftp")),
               _phone("0A0000000C03", _boot("failed", "G.4-malformed"), _boot("locked-out", UNKNOWN))]
    out = tmp_path / "r.xml"
    write_junit(iter(records), tmp_path / "c.pcap", out, {}, flashes)
    first, ended_ok, later = _failures(out)
    fill = {"MAC": "0A0000000C01", "FLASH": str(flashes / "0A0000000C01"),
            **tvs_back_fill(None, [(UNREACHABLE, NO_ANSWER)], hosts=["10.0.0.5"])}
    held = HeldLists.of(False, False)
    ways = way_out_lines(UNREACHABLE, "ITL", indent="", fill=fill, held=held)
    assert "phoneemu lab service OLD tvs start" in "\n".join(ways)
    lines = first.splitlines()
    assert lines[1:1 + len(ways)] == ways, first
    assert [line.split(":", 1)[0] for line in lines[1 + len(ways):]] == \
        phone_placeholders_left(UNREACHABLE, "ITL", fill, held=held) == ["DIR", "OLD"], first
    assert "DIR: the lab folder (not known to replay: the lab serving 10.0.0.5 in the capture)" in lines
    assert "way out" not in ended_ok, ended_ok
    assert f"ways out of boot 2 of 2, its last (locked-out, {UNKNOWN}):" in later.splitlines(), later
    no_flash = ("FLASH: the phone's flash folder, as boot --flash keeps it (not known to replay: no "
                "--fleet-flash or --export-flash folder holds the phone's flash)")
    assert no_flash in later.splitlines(), later


def test_replay_all_junit_of_a_real_clusters_files_names_no_lab_command(tmp_path: Path) -> None:
    out = tmp_path / "r.xml"
    write_junit(iter([_phone("0A0000000D01", _boot("locked-out", UNKNOWN))]), tmp_path / "c.pcap", out,
                {NOT_A_LAB: "c.pcap"})
    (body,) = _failures(out)
    assert "rehearse in a lab: phoneemu run scenarios/" in body and "  lab: " not in body, body


def _counted(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """Count the calls of ``owner.name`` (still called)."""
    calls = [0]
    real = getattr(owner, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real(*args, **kwargs)
    monkeypatch.setattr(owner, name, counting)
    return calls


def test_the_legend_of_many_locked_phones_is_worked_out_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """phone_placeholders_left of 200 phones of one rule and the same names filled: one walk of the ways
    (was one per phone: 40,000 phones 3 s). The values filled do not change what is left."""
    walks = _counted(monkeypatch, ways_out, "_left_in")
    fills = [{"DIR": f"/labs/{i}", "MAC": f"0A{i:010X}", "W2-unique-name": "-"} for i in range(200)]
    left = {tuple(phone_placeholders_left(UNKNOWN, "ITL", fill, held=HeldLists.of(False, False)))
            for fill in fills}
    assert left == {("OLD", "NEW", "FLASH")} and walks[0] == 1


def test_the_legend_reads_the_lists_of_each_flash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not told the lists held, each phone's are read from its flash, not remembered by rule: a phone
    holding a CTL is not told the rollback (``lab rollback OLD on``), so OLD is not left; one without is."""
    held = {"/f/ctl": HeldLists.of(True, False), "/f/none": HeldLists.of(False, False)}
    monkeypatch.setattr(ways_out, "held_lists", lambda flash: held[str(flash)])
    with_ctl = phone_placeholders_left(UNREACHABLE, "ITL", {"DIR": "/lab", "FLASH": "/f/ctl"})
    without = phone_placeholders_left(UNREACHABLE, "ITL", {"DIR": "/lab", "FLASH": "/f/none"})
    assert with_ctl == [] and without == ["OLD"], (with_ctl, without)


def test_many_phones_ways_split_each_command_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """way_out_lines of 200 phones whose flashes were not kept: a way's command split once (was 4 shell
    splits a phone: most of fleet boot --junit's time)."""
    splits = _counted(monkeypatch, shlex, "split")
    for i in range(200):
        way_out_lines(UNREACHABLE, "ITL", fill={"DIR": "/lab", "MAC": f"0A{i:010X}",
                                                ways_out.FLASH_NOT_KEPT: "phoneemu fleet boot"})
    assert splits[0] <= 4, splits


def test_many_phones_tvs_back_parses_each_address_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """tvs_back_fill of 200 phones that booted against one address: that address parsed once (was once
    a phone: replay --all --junit asks for each)."""
    parsed = _counted(monkeypatch, phoneemu.values, "address_of")
    reason = "no TVS server answered: 10.9.9.77:2445: refused"
    for _ in range(200):
        assert tvs_back_fill(None, [(UNREACHABLE, reason)], hosts=["10.0.0.77"]) == {
            ways_out.TVS_ELSEWHERE: "10.9.9.77:2445"}
    assert parsed[0] <= 2, parsed
