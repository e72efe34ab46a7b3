"""Every way out of the catalogue, as ``fleet boot`` says it (summary text, ``--json``'s ``run``, the JUnit
body of each phone) under the fills a user's run gives — a lab, its flashes kept (``--flash``) or not —
leaves no placeholder the run knows: ``DIR`` (the lab), ``NEW`` (the cluster the phones refused: that lab),
``FLASH`` / ``FLEET`` (the flashes, or that they were not kept), ``MAC``, ``FIRST`` / ``N`` (consecutive
MACs). ``OLD`` and ``CENTRAL`` (a cluster the run never saw) and ``FILE`` (the file refused, in no folder
of the run) stay for the user. Was: ``--flash FLASH`` in the JUnit and ``--flash FLEET`` in the summary
of phones whose flashes were not kept (the bulk ITL and CTL resets), ``lab exchange OLD NEW`` with the
lab known, ``boot --lab DIR --flash FLASH --register`` in a fleet's summary with ``--flash`` given."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from phoneemu.commands import fleet as fleet_cmd
from phoneemu.phone.boot import BootTarget
from phoneemu.phone.ways_out import (
    WAYS_BY_KIND,
    HeldLists,
    way_out_lines,
    ways_out,
    ways_out_doc,
    ways_out_doc_run,
    ways_out_text,
)

LAB = "/srv/lab"
TARGET = BootTarget(host="127.0.0.1", tftp_port=6969)
KNOWN_BY_THE_RUN = re.compile(r"\b(?:DIR|NEW|FLASH|FLEET|MAC|FIRST|N)\b")
NEVER_SEEN_BY_THE_RUN = {"OLD", "CENTRAL", "FILE"}
HELD = [None, *(HeldLists.of(ctl, empty) for ctl in (False, True) for empty in (False, True))]
GROUPS = [(rule, kind, code, held) for kind, table in WAYS_BY_KIND.items() for rule in table
          for code in (None, "too-large") for held in HELD]


def _summary_fill(*, kept: bool) -> dict[str, str]:
    """What ``fleet boot --lab LAB --count 2 [--flash /srv/fleet]`` fills in its summary and ``--json``."""
    args = argparse.Namespace(lab=Path(LAB), flash=Path("/srv/fleet") if kept else None)
    return fleet_cmd._summary_fill(args, TARGET, ["0A0000000001", "0A0000000002"], listed=False)


def _junit_fill(*, kept: bool) -> dict[str, str]:
    """What it fills in one phone's JUnit body."""
    return fleet_cmd._phone_fill("0A0000000001", target=TARGET, lab=Path(LAB),
                                 flash=Path("/srv/fleet") if kept else None)


def _commands(lines: list[str]) -> list[str]:
    """The lab commands of ``way_out_lines``' text, without the rehearsal after them."""
    return [line.split("lab: ", 1)[1].split("   rehearse: ")[0] for line in lines
            if line.lstrip().startswith("lab: ")]


def _left(command: str) -> set[str]:
    """The placeholders left in ``command`` that the run knows (none expected)."""
    return set(KNOWN_BY_THE_RUN.findall(command))


@pytest.mark.parametrize("kept", [False, True], ids=["flash-not-kept", "flash-kept"])
def test_no_way_out_of_a_fleet_leaves_a_placeholder_the_run_knows(kept: bool) -> None:
    doc = ways_out_doc({group: 2 for group in GROUPS})
    assert doc, "the catalogue has ways out"
    summary = _commands(ways_out_text(doc, _summary_fill(kept=kept)))
    runs = [w["run"] for entry in ways_out_doc_run(doc, _summary_fill(kept=kept)) for w in entry["ways"]]
    junit = [c for rule, kind, code, held in GROUPS
             for c in _commands(way_out_lines(rule, kind, indent="", fill=_junit_fill(kept=kept),
                                              reason_code=code, held=held))]
    assert len(summary) == len(runs) == sum(len(e["ways"]) for e in doc) and junit
    for where, commands in (("summary", summary), ("--json run", runs), ("junit", junit)):
        for command in commands:
            assert not _left(command), (where, command)
            assert set(re.findall(r"\b[A-Z]{3,}\b", command.split(" — ")[0])) <= NEVER_SEEN_BY_THE_RUN | {
                "FOLDER"}, (where, command)


def test_phones_whose_flashes_were_not_kept_are_told_the_boot_without_flash_and_why() -> None:
    """The bulk ITL reset of a fleet without ``--flash``: the boot between its steps, without ``--flash``,
    and why — one phone's (its JUnit body) by its MAC."""
    ways = ways_out("G.3.5-reject-unknown-signer", "ITL")
    assert any("itl-reset" in w.lab for w in ways)
    fleet = [c for c in _commands(ways_out_text(ways_out_doc({("G.3.5-reject-unknown-signer", "ITL"): 2}),
                                                _summary_fill(kept=False))) if "itl-reset" in c]
    not_kept = ("not kept (no --flash: each run starts from an empty one; phoneemu fleet boot --flash "
                "FOLDER keeps")
    assert fleet == [f"phoneemu lab itl-reset {LAB} localkey && phoneemu fleet boot --lab {LAB} --mac-start "
                     f"0A0000000001 --count 2 && phoneemu lab restart-tftp {LAB} — boot them with this run's "
                     "options: their flashes "
                     f"were {not_kept} them)"]
    one = [c for c in _commands(way_out_lines("G.3.5-reject-unknown-signer", "ITL",
                                              fill=_junit_fill(kept=False))) if "itl-reset" in c]
    assert one == [f"phoneemu lab itl-reset {LAB} localkey && phoneemu boot --lab {LAB} --mac 0A0000000001 "
                   f"&& phoneemu lab restart-tftp {LAB} — boot it with this run's options: its flash was "
                   f"{not_kept} it)"]


def test_the_cluster_moved_to_is_the_lab_the_fleet_was_booted_against() -> None:
    """The bulk certificate export (``lab exchange OLD NEW``): NEW is the ``--lab`` the phones refused."""
    doc = ways_out_doc({("G.3.4-tvs-unknown-signer", "ITL"): 2})
    for fill in (_summary_fill(kept=False), _junit_fill(kept=True)):
        lines = ways_out_text(doc, fill)
        assert f"phoneemu lab exchange OLD {LAB} && phoneemu lab restart-tvs OLD" in _commands(lines), lines
