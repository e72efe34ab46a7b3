"""``lab mixed-mode DIR off`` while the rollback ITL is served says, on stderr, that the phones holding a CTL
and that ITL will refuse their configs, and the way out (``lab rollback DIR off``, a reset). Was: nothing
said. The note is checked against what such a phone does (booted on the lab's files in memory; the
rollback ITL names no TVS, so none is asked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import boot_into_flash, mixed_mode_lab

NOW = 1_780_000_000
MAC = "0A0000000001"
NOTE = "phones holding a CTL and that ITL will refuse their configs (G.4-reject-unknown-signer)"


def _mixed_mode_lab(root: Path) -> LabCluster:
    return mixed_mode_lab(root, seed=51, name="lab", mac=MAC, now=NOW)


def test_mixed_mode_off_with_the_rollback_on_says_what_phones_holding_both_do(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = _mixed_mode_lab(tmp_path / "lab")
    flash = tmp_path / "ph1"
    assert boot_into_flash(lab, flash, MAC, now=NOW).ok  # takes the CTL and the ITL
    assert main(["lab", "rollback", str(lab.root), "on"]) == 0
    assert boot_into_flash(LabCluster.open(lab.root), flash, MAC, now=NOW).trust["ITL"] == "empty"
    capsys.readouterr()

    assert main(["lab", "mixed-mode", str(lab.root), "off"]) == 0
    err = capsys.readouterr().err
    assert f"phoneemu lab mixed-mode: note: the rollback ITL is served (Prepare Cluster for Rollback to " \
           f"pre-8.0): {NOTE}" in err, err
    assert f"phoneemu lab rollback {lab.root} off, then reset them" in err
    # what the note says: the config refused under that rule, the rollback turned off the way out
    report = boot_into_flash(LabCluster.open(lab.root), flash, MAC, now=NOW)
    assert report.locked_out and report.deciding is not None
    assert report.deciding.rule == "G.4-reject-unknown-signer"
    assert main(["lab", "rollback", str(lab.root), "off"]) == 0
    assert boot_into_flash(LabCluster.open(lab.root), flash, MAC, now=NOW).ok


def test_no_note_without_the_rollback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = _mixed_mode_lab(tmp_path / "lab")
    assert main(["lab", "mixed-mode", str(lab.root), "off"]) == 0
    assert NOTE not in capsys.readouterr().err
