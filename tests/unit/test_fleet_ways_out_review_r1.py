"""A fleet whose flashes were not kept is told the boot of a reset's way out with its phones named: the
consecutive MACs of the run (``fleet boot --lab DIR --mac-start FIRST --count N``), as one phone's JUnit
body names it by ``--mac``. Was ``fleet boot --lab DIR`` alone, which ``fleet boot`` refuses (``--count N
is required``). A fleet of listed phones (``--models``) has no consecutive MACs: the boot is left as it
was, "with this run's options"."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from phoneemu.commands import fleet as fleet_cmd
from phoneemu.phone.boot import BootTarget
from phoneemu.phone.ways_out import ways_out_doc, ways_out_doc_run, ways_out_text

LAB = "/srv/lab"
MACS = ["0A0000000F30", "0A0000000F31", "0A0000000F32"]
#: a lockout whose way out boots the phones between two lab operations: the bulk ITL reset
LOCKED = {("G.3.5-reject-unknown-signer", "ITL"): len(MACS)}


def _fleet_boots(*, listed: bool) -> list[str]:
    """The ``fleet boot`` commands of the summary's and ``--json``'s ways out of a run without --flash."""
    args = argparse.Namespace(lab=Path(LAB), flash=None)
    fill = fleet_cmd._summary_fill(args, BootTarget(host="127.0.0.1", tftp_port=6969), MACS, listed=listed)
    doc = ways_out_doc(LOCKED)
    said = [line.split("lab: ", 1)[1] for line in ways_out_text(doc, fill)
            if line.lstrip().startswith("lab: ")]
    said += [w["run"] for entry in ways_out_doc_run(doc, fill) for w in entry["ways"]]
    return [part.strip() for command in said for part in command.split(" — ")[0].split("&&")
            if part.strip().startswith("phoneemu fleet boot")]


def test_the_boot_of_a_reset_names_the_runs_consecutive_macs() -> None:
    boots = _fleet_boots(listed=False)
    assert len(boots) == 2, boots  # the summary's and the JSON's
    for boot in boots:
        words = shlex.split(boot)
        assert words[words.index("--mac-start") + 1] == MACS[0], boot
        assert words[words.index("--count") + 1] == str(len(MACS)), boot
        assert "--flash" not in words, boot


def test_listed_phones_are_left_to_this_runs_options() -> None:
    boots = _fleet_boots(listed=True)
    assert len(boots) == 2, boots
    for boot in boots:
        assert shlex.split(boot) == ["phoneemu", "fleet", "boot", "--lab", LAB], boot
