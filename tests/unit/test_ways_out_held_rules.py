"""The lists a locked phone holds choose its ways out only under the rules about who signs
(``phoneemu.phone.ways_out._for_held``), and they are read from its flash as its boot loads them
(``held_lists``).

Was: holding a CTL, every lockout rule got "erase the lists" appended, and holding the rollback ITL too,
every trust list refused got the way back from a move first (``lab rollback OLD off ... lab exchange OLD
NEW``) and every config refused "turn the rollback off" — also an ITL above 64 KiB, a hash the model
lacks, an expired signer, a bad signature (the file's own fault: no list, no move, no erase changes it),
and an unsigned config (a pre-8.0 cluster, which has no rollback to turn off). ``held_lists`` read each
list whole with ``Path.read_bytes``: a FIFO named ``CTLFile.tlv`` waited for a writer for ever (``boot
--flash``, ``phone show --flash`` hung after the boot itself, which skips such a file).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from phoneemu.phone import ways_out as wo
from tests.unit.test_ways_out_held_lists import _flash

REPO = Path(__file__).resolve().parents[2]
HELD = [wo.HeldLists(ctl=True, empty_itl=False), wo.HeldLists(ctl=True, empty_itl=True),
        wo.HeldLists(ctl=False, empty_itl=True), wo.HeldLists(ctl=False, empty_itl=False)]
#: rules where the file itself is at fault: the ways are the rule's whatever the phone holds
FILES_OWN_FAULT = [(kind, rule) for kind in ("ITL", "CTL", "config") for rule in wo.WAYS_BY_KIND[kind]
                   if rule.split("-", 1)[1] in ("oversize", "unsupported-hash", "expired-signer",
                                                "bad-signature")]


def _scenarios(ways: tuple[wo.WayOut, ...]) -> list[str]:
    return [w.scenario for w in ways]


@pytest.mark.parametrize(("kind", "rule"), FILES_OWN_FAULT)
def test_a_files_own_fault_keeps_its_ways_whatever_the_phone_holds(kind: str, rule: str) -> None:
    assert len(FILES_OWN_FAULT) >= 9  # every kind's: oversize ITL, hashes, expired signers, bad signatures
    for held in HELD:
        assert wo.ways_out(rule, kind, held=held) == wo.ways_out(rule, kind), (held, _scenarios(
            wo.ways_out(rule, kind, held=held)))


def test_an_unsigned_config_refused_holding_both_lists_is_not_told_to_turn_a_rollback_off() -> None:
    """A pre-8.0 cluster serves it (spec §G.4): only erasing the lists helps a phone holding a CTL."""
    for held in HELD[:2]:
        assert _scenarios(wo.ways_out("G.4-unsigned-rejected", "config", held=held)) == \
            ["migration-manual-itl-delete"], held


def test_the_way_back_and_the_rollback_off_still_lead_under_an_unknown_signer() -> None:
    both = wo.HeldLists(ctl=True, empty_itl=True)
    for kind in ("ITL", "CTL"):
        assert _scenarios(wo.ways_out("G.3.5-reject-unknown-signer", kind, held=both))[0] == \
            "migration-ctl-rollback-back", kind
    config = wo.ways_out("G.4-reject-unknown-signer", "config", held=both)
    assert _scenarios(config)[0] == "rollback-switch-back"


def test_held_lists_does_not_wait_on_a_fifo_and_reads_as_the_boot_loads(tmp_path: Path) -> None:
    """A FIFO as the CTL (nobody writing): absent, as the boot skips it, at once. Run in a child with a
    bound: the old read waited for a writer for ever."""
    flash = _flash(tmp_path, ctl=False, empty_itl=True)
    os.mkfifo(flash / "CTLFile.tlv")
    code = ("import sys; from phoneemu.phone.ways_out import held_lists; "
            "print(held_lists(sys.argv[1]))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code, str(flash)], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    # the flash cannot tell whether its lists hold the ITL or CTL reset's signer (a refused list does): not
    # known
    assert done.stdout.strip() == ("HeldLists(ctl=False, empty_itl=True, reset_untrusted=False, "
                                   "ctl_reset_untrusted=False)")


def test_held_lists_skips_a_list_above_the_profiles_limit(tmp_path: Path) -> None:
    """A CTL above the phone's limit is not loaded by its boot: not held either (a link to it is followed,
    as the boot follows it)."""
    from phoneemu.phone.profile import profile_from_dict

    flash = _flash(tmp_path, ctl=True, empty_itl=False)
    size = (flash / "CTLFile.tlv").stat().st_size
    small = profile_from_dict("cp-8861", {"trust_list_limit": max(1024, size - 1)})
    assert size > small.trust_list_limit
    assert wo.held_lists(flash, profile=small) == wo.HeldLists(ctl=False, empty_itl=False)
    assert wo.held_lists(flash) == wo.HeldLists(ctl=True, empty_itl=False)
    (flash / "CTLFile.tlv").rename(tmp_path / "ctl.tlv")
    (flash / "CTLFile.tlv").symlink_to(tmp_path / "ctl.tlv")
    assert wo.held_lists(flash) == wo.HeldLists(ctl=True, empty_itl=False)
