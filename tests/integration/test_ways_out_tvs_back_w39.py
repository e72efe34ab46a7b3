"""Bringing TVS back says the same thing in every command (task W, s39).

A migration's phones (booted on ``old``, moved to ``new``, ``lab exchange`` or not) name old's TVS in their
config: with old's TVS down, ``lab service DIR tvs start`` (DIR the lab they booted against) would start
new's, the wrong one — they are told ``lab service OLD tvs start`` with OLD's legend line. Phones of
``new`` itself, its ITLRecovery regenerated and its own TVS down, are told ``DIR`` (or the ``--cluster``
lab). Was, from these very labs:

* ``phone show --flash`` / ``--fleet-flash`` (with and without ``--cluster new``), ``replay --mac`` and
  ``replay --all``: ``lab service DIR tvs start`` (``new`` with ``--cluster``) for the migration's phones;
* ``fleet boot --lab new``'s summary: ``lab service OLD tvs start`` and ``lab rollback OLD on`` with no
  legend line saying what OLD stands for (``boot``, ``predict``, ``phone show``, ``replay`` had one);
* ``predict --junit`` failure bodies: ``ok: False``, ``installed: {"ctl": null, ...}``, ``decisions:
  [...]``, where ``fleet boot --junit`` says ``yes``/``no`` and ``name value`` pairs.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phoneemu.cli import main
from tests.helpers import legend_of
from tests.ways_out_helpers import MACS, NOW, migration_labs

# each lab's configs name its own TVS there (port 2445); one pair of addresses per xdist worker: the module's
# tests may be split between workers, each building the labs, and a capture holds whatever goes to its host
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
OLD_HOST, NEW_HOST = f"127.39.{_WORKER}.58", f"127.39.{_WORKER}.59"
OWN = "phoneemu lab service DIR tvs start"
ELSEWHERE = "phoneemu lab service OLD tvs start"


@pytest.fixture(scope="module")
def labs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`tests.ways_out_helpers.migration_labs`: ``old`` and ``new``, the ``moved`` and ``stayed``
    fleets, their captures and ``fleet boot``'s output."""
    return migration_labs(tmp_path_factory.mktemp("w39"), hosts=(OLD_HOST, NEW_HOST))


def _tvs_back(text: str) -> list[str]:
    """The lab commands of the TVS-back ways out in ``text`` (without the rehearsal after them)."""
    return [line.split("lab: ", 1)[1].split("   rehearse: ")[0].strip() for line in text.splitlines()
            if line.strip().startswith("lab: ") and " tvs start" in line]


def _said(argv: list[str], capsys: pytest.CaptureFixture[str], *, status: int = 0) -> str:
    assert main(argv) == status
    return capsys.readouterr().out


def _legend_names(text: str) -> set[str]:
    return {line.split(":", 1)[0] for line in legend_of(text)}


def test_phone_show_flash_names_old_for_the_tvs_of_the_cluster_left(
        labs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One phone's flash: its last boot went to new's address, the TVS it could not reach is old's."""
    moved = _said(["phone", "show", "--flash", str(labs / "moved" / MACS[0])], capsys)
    assert f"no TVS server answered: {OLD_HOST}:2445" in moved, moved
    assert _tvs_back(moved) == [ELSEWHERE], moved
    assert "OLD" in _legend_names(moved), moved
    stayed = _said(["phone", "show", "--flash", str(labs / "stayed" / MACS[0])], capsys)
    assert f"no TVS server answered: {NEW_HOST}:2445" in stayed, stayed
    assert _tvs_back(stayed) == [OWN], stayed
    assert "DIR" in _legend_names(stayed), stayed


@pytest.mark.parametrize("cluster", [False, True], ids=["no-cluster", "cluster-new"])
def test_phone_show_fleet_flash_names_old_for_the_tvs_of_the_cluster_left(
        labs: Path, capsys: pytest.CaptureFixture[str], cluster: bool) -> None:
    """A fleet's flashes: OLD for the moved phones (was DIR, or ``new`` itself with ``--cluster new``);
    the lab's own for those that stayed; ``tvs_elsewhere`` in the JSON names the servers."""
    new = labs / "new"
    given = ["--cluster", str(new)] if cluster else []
    own = f"phoneemu lab service {new} tvs start" if cluster else OWN
    moved = _said(["phone", "show", "--fleet-flash", str(labs / "moved"), *given], capsys)
    assert _tvs_back(moved) == [ELSEWHERE], moved
    assert "OLD" in _legend_names(moved), moved
    stayed = _said(["phone", "show", "--fleet-flash", str(labs / "stayed"), *given], capsys)
    assert _tvs_back(stayed) == [own], stayed
    for fleet, elsewhere in (("moved", f"{OLD_HOST}:2445"), ("stayed", None)):
        argv = ["phone", "show", "--fleet-flash", str(labs / fleet), *given, "--json"]
        doc = json.loads(_said(argv, capsys))
        assert doc["tvs_elsewhere"] == elsewhere, (fleet, doc["tvs_elsewhere"])


def test_replay_names_old_for_the_tvs_of_the_cluster_left(labs: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """``replay --mac`` of each capture, the phone holding what it held before; ``replay --all`` alike."""
    for fleet, expected in (("moved", ELSEWHERE), ("stayed", OWN)):
        capture, before = labs / f"{fleet}.pcap", labs / f"{fleet}-before"
        one = _said(["replay", str(capture), "--mac", MACS[0], "--flash", str(before / MACS[0])], capsys,
                    status=1)
        assert _tvs_back(one) == [expected], one
        every = _said(["replay", str(capture), "--all", "--fleet-flash", str(before)], capsys, status=1)
        assert _tvs_back(every) == [expected], every
        legend = _legend_names(one) & _legend_names(every)
        assert ("OLD" if fleet == "moved" else "DIR") in legend, (one, every)


def test_fleet_boot_summary_says_what_old_stands_for(labs: Path) -> None:
    """``fleet boot --lab new``: OLD in its ways out (bringing TVS back, the rollback), its legend line said
    once under them, as ``boot`` says it (was none); the phones of new's own TVS: the lab's, OLD (the
    rollback's) said too."""
    moved = (labs / "moved.txt").read_text()
    assert _tvs_back(moved) == [ELSEWHERE], moved
    legend = legend_of(moved)
    assert [line for line in legend if line.startswith("OLD: ")] == [
        "OLD: the lab folder of the cluster the phones left (not known to fleet boot: --lab names the "
        "cluster it boots against, not the one they left)"], moved
    assert moved.rstrip().splitlines()[-1] == legend[-1], moved  # under the ways out, at the end
    stayed = (labs / "stayed.txt").read_text()
    assert _tvs_back(stayed) == [f"phoneemu lab service {labs / 'new'} tvs start"], stayed
    assert _legend_names(stayed) == {"OLD"}, stayed


def test_predict_junit_bodies_say_values_as_fleet_boot_junit_does(
        labs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``predict --junit``, one phone and a fleet: ``yes``/``no``, ``name value`` pairs, ``;`` between a
    list's items (:func:`phoneemu.fleet.junit.field_lines`), no JSON and no Python reprs."""
    new_tftp = str(labs / "new" / "tftp")
    one, fleet = labs / "one.xml", labs / "fleet.xml"
    _said(["predict", "--flash", str(labs / "moved-before" / MACS[0]), "--now", str(NOW), "--junit", str(one),
           new_tftp], capsys, status=1)
    _said(["predict", "--fleet-flash", str(labs / "moved-before"), "--now", str(NOW), "--junit", str(fleet),
           new_tftp], capsys, status=1)
    bodies = [f.text or "" for path in (one, fleet) for f in ET.parse(path).getroot().iter("failure")]
    assert len(bodies) == 1 + len(MACS)
    for body in bodies:
        fields = [line for line in body.splitlines() if not line.startswith(("way out", "  lab: "))]
        said = "\n".join(fields)
        for word in ("True", "False", "None", "null", "{", "[\"", "['"):
            assert word not in said, (word, body)
        assert _tvs_back(body.replace("\n  lab: ", "\nlab: ")) == [ELSEWHERE], body
    one_lines = bodies[0].splitlines()
    itl = labs / "moved-before" / MACS[0] / "ITLFile.tlv"
    assert f"installed: ctl none, itl {itl}" in one_lines, bodies[0]
    assert any(line.startswith("decisions: G.3.4-tvs-unreachable ITLSEP") and "; G.3.5-" in line
               for line in one_lines), bodies[0]
    fleet_lines = bodies[1].splitlines()
    # held: the moved phones' ITL lacks new's CallManager certificate, which signs its bulk ITL reset: said
    # as fleet boot --junit says it of the same phones (walk s41)
    held = "held: ctl no, empty_itl no, reset_signer_held no"
    for line in ("ok: no", "locked_out: yes", held, "trust: CTL absent, ITL rejected"):
        assert line in fleet_lines, bodies[1]
    booted = [f.text or "" for f in ET.parse(labs / "moved.xml").getroot().iter("failure")]
    assert len(booted) == len(MACS)
    assert all(held in body.splitlines() for body in booted), booted
