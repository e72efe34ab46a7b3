"""``lab itl-reset`` in a mixed-mode lab says what a phone's boots then show (spec G.7, G.3.2, B.7).

A phone holding the lab's CTL refuses the CTL re-signed by a regenerated ITLRecovery (TVS unreachable: the
boots are offline). After ``lab itl-reset`` the CTL comes first in its boot, so the reset that brings it the
reset ITL leaves it locked; its next reset, after ``lab restart-tftp``, takes the CTL. With the rollback on,
the reset ITL is served empty (the rollback ITL) and stays so: the phone holds the empty ITL until the
rollback is off and it resets. Was: the note said "reset the phones now (each takes it ...), then ...
restart-tftp ..., which they then trust" in both, as if that reset ended the lockout and brought the full
ITL. Each claim of the note is checked by booting the phone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone.ways_out import HeldLists, held_lists
from tests.helpers import boot_offline_into, run

NOW = 1_780_000_000
MAC = "0A0000002901"


def _cli(*argv: str) -> None:
    assert main(list(argv)) == 0, argv


def _boot(lab: Path, fleet: Path) -> Any:
    """One offline boot of the phone on the lab's files as they are now (TVS unreachable)."""
    (report,) = run(boot_offline_into(fleet, LabCluster.open(lab), [MAC], now=NOW))
    return report


@pytest.mark.parametrize("rollback", [True, False])
def test_itl_reset_note_in_mixed_mode_is_what_the_boots_show(rollback: bool, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    lab, fleet = tmp_path / "lab", tmp_path / "fleet"
    _cli("lab", "init", str(lab), "--seed", "5", "--key", "rsa1024", "--now", str(NOW))
    _cli("lab", "mixed-mode", str(lab), "on")
    _cli("lab", "phone", "add", str(lab), "--mac", MAC)
    assert _boot(lab, fleet).ok
    if rollback:
        _cli("lab", "rollback", str(lab), "on")
        assert _boot(lab, fleet).trust["ITL"] == "empty"
    _cli("lab", "regenerate", str(lab), "itlrecovery")
    locked = _boot(lab, fleet)
    assert locked.locked_out and locked.trust["CTL"] == "rejected"
    capsys.readouterr()
    _cli("lab", "itl-reset", str(lab), "localkey")
    note = capsys.readouterr().err
    assert "reset the phones now" in note
    assert "stays locked at that reset, though it takes the reset ITL" in note
    assert note.index(f"restart-tftp {lab}") < note.index("reset the phones again after the restart")
    assert ("the rollback is on: the reset ITL is served as the rollback ITL, empty" in note) is rollback
    assert (f"until phoneemu lab rollback {lab} off and a reset" in note) is rollback

    first = _boot(lab, fleet)  # the reset the note asks for: the reset ITL taken, the CTL still refused
    assert first.locked_out and first.trust["CTL"] == "rejected"
    assert first.trust["ITL"] == ("empty" if rollback else "updated")
    _cli("lab", "restart-tftp", str(lab))
    again = _boot(lab, fleet)  # the next: the CTL taken, the lockout over
    assert again.ok and not again.locked_out and again.trust["CTL"] == "updated"
    assert held_lists(fleet / MAC) == HeldLists(ctl=True, empty_itl=rollback)
    if rollback:  # the empty ITL held until the rollback is off and a reset
        _cli("lab", "rollback", str(lab), "off")
        assert _boot(lab, fleet).ok
        assert held_lists(fleet / MAC) == HeldLists(ctl=True, empty_itl=False)


def test_itl_reset_note_with_mixed_mode_off_and_the_rollback_on_is_what_the_boots_show(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Mixed mode off (the CTL served non-secure, its CCM+TFTP records emptied) and the rollback on: a phone
    holding a CTL and the rollback ITL takes the CTL after the restart and still refuses its config — the
    lockout ends only with the rollback off and a reset, as the note says. Was: the note ended "reset the
    phones again after the restart; they hold the empty ITL ... until ... rollback off", as if that reset
    ended the lockout."""
    lab, fleet = tmp_path / "lab", tmp_path / "fleet"
    _cli("lab", "init", str(lab), "--seed", "5", "--key", "rsa1024", "--now", str(NOW))
    _cli("lab", "mixed-mode", str(lab), "on")
    _cli("lab", "phone", "add", str(lab), "--mac", MAC)
    assert _boot(lab, fleet).ok
    _cli("lab", "mixed-mode", str(lab), "off")
    assert _boot(lab, fleet).ok
    _cli("lab", "rollback", str(lab), "on")
    _cli("lab", "regenerate", str(lab), "itlrecovery")
    capsys.readouterr()
    _cli("lab", "itl-reset", str(lab), "localkey")
    note = capsys.readouterr().err
    assert "refuses its config (G.4-reject-unknown-signer) at every reset, the CTL taken or not" in note, note
    assert f"until phoneemu lab rollback {lab} off and a reset" in note

    assert _boot(lab, fleet).locked_out  # the reset the note asks for
    _cli("lab", "restart-tftp", str(lab))
    again = _boot(lab, fleet)  # the next: the CTL taken, the config still refused
    assert again.trust["CTL"] == "empty" and again.locked_out
    assert again.deciding.rule == "G.4-reject-unknown-signer"
    assert held_lists(fleet / MAC) == HeldLists(ctl=True, empty_itl=True)
    _cli("lab", "rollback", str(lab), "off")
    assert _boot(lab, fleet).ok  # the rollback off and a reset: the full ITL names the config signer
