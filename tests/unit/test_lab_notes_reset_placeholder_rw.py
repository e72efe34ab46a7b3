"""``lab itl-reset`` and ``lab ctl-reset`` say what the placeholder of their reset's boot stands for
(review of s39's ways out): ``fleet boot --lab DIR --flash FLEET`` for a lab of many phones, ``boot --lab
DIR --flash FLASH`` for one. Was: the placeholder bare (its meaning made by ``_reset_boots`` and dropped),
where the lockout warnings of the same operations, and every command's ways out, say it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone.ways_out import PLACEHOLDERS

NOW = 1_780_000_000


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mixed-mode lab (a CTL served: ``ctl-reset`` runs) of three phones."""
    where = tmp_path_factory.mktemp("rw-notes") / "lab"
    cluster = LabCluster.init(where, seed=43, key_spec="rsa1024", now=NOW)
    cluster.add_phones(["0A0000004301", "0A0000004302", "0A0000004303"], now=NOW)
    assert main(["lab", "mixed-mode", str(where), "on"]) == 0
    return where


@pytest.mark.parametrize(("operation", "closing"),
                         [("itl-reset", "restart-tftp"), ("ctl-reset", "ctl-update")])
def test_a_reset_note_says_what_its_placeholder_stands_for(lab: Path, capsys: pytest.CaptureFixture[str],
                                                           operation: str, closing: str) -> None:
    capsys.readouterr()
    assert main(["lab", operation, str(lab), "localkey"]) == 0
    note = next(line for line in capsys.readouterr().err.splitlines() if "note: " in line)
    assert f"phoneemu fleet boot --lab {lab} --flash FLEET" in note, note
    assert f"(FLEET: {PLACEHOLDERS['FLEET']})" in note, note
    assert main(["lab", closing, str(lab)]) == 0
