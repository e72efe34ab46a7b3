"""Messages a new user met walking the README's ITL-lockout workflows by hand (session 35, W1): each now
says what to type, with this lab's folder and the MAC filled in.

* ``lab itl-reset DIR remotekey`` after ``lab itlrecovery DIR export FILE`` said "run 'itlrecovery export'
  first or give --key-file": the user had run it, and running it again changed nothing (the CLI's export
  writes the FILE it is given, never the default the reset reads).
* A MAC the lab has no phone for (``boot --lab``, ``lab security-mode``...) said "add it with 'lab phone
  add'": no folder, no MAC (``fleet boot --lab`` already wrote the whole command).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import pristine_lab

NOW = 1_780_000_000
MAC = "0A0000003501"
UNKNOWN = "0A00000035FF"

base_lab, lab = pristine_lab("walk-s35-w1", now=NOW, phones={MAC: {"now": NOW}})


def test_remotekey_reset_after_a_cli_export_says_to_give_that_file(
        lab: LabCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The export the old advice named was done; the reset needs its file as --key-file, and then works."""
    exported = tmp_path / "ITLRecovery.pem"
    assert main(["lab", "itlrecovery", str(lab.root), "export", str(exported)]) == 0
    capsys.readouterr()
    assert main(["lab", "itl-reset", str(lab.root), "remotekey"]) == 2
    err = capsys.readouterr().err
    assert err == (f"phoneemu lab itl-reset: --key-file FILE: itl reset remotekey needs the ITLRecovery key "
                   f"exported earlier: give --key-file FILE, the file 'phoneemu lab itlrecovery {lab.root} "
                   f"export FILE' wrote (none at {lab.root / 'exported' / 'itlrecovery.pem'}, read without "
                   "--key-file)\n"), err
    assert "run 'itlrecovery export' first" not in err
    assert main(["lab", "itl-reset", str(lab.root), "remotekey", "--key-file", str(exported)]) == 0
    assert "ITL signed by" in capsys.readouterr().out


def test_a_scenario_lab_without_an_export_names_the_step(tmp_path: Path) -> None:
    """A scenario's throw-away lab has no folder the user can type: the step that exports is named."""
    from phoneemu.errors import EncodeError

    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW, durable=False)
    with pytest.raises(EncodeError, match="an itlrecovery-export step before it"):
        c.itl_reset("remotekey", now=NOW)


@pytest.mark.parametrize("argv", [
    ["lab", "security-mode", "{lab}", "--mac", UNKNOWN, "encrypted"],
    ["lab", "encryption", "{lab}", "--mac", UNKNOWN, "on"],
    ["boot", "--lab", "{lab}", "--tftp", "127.0.0.1:9", "--mac", UNKNOWN],
])
def test_a_mac_the_lab_lacks_is_told_the_whole_command_that_adds_it(
        lab: LabCluster, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Was "(add it with 'lab phone add')": which lab, which MAC, left to the user."""
    argv = [str(lab.root) if a == "{lab}" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"no phone {UNKNOWN} in this cluster (add it with 'phoneemu lab phone add {lab.root} --mac " \
           f"{UNKNOWN}')\n" in err, err
    assert err.count("\n") == 1, err
