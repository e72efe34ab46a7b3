"""``phoneemu replay`` with a key log that belongs to another capture (task REV-REPLAY).

Was: ``capC.keys`` beside ``capC.pcap`` holding another run's secrets was said "using the TLS key log ...
beside the capture (2 secrets)" and used: none of the capture's TLS connections decrypted, each TVS
question answered "no such TVS query of this phone in the capture", the lockout said ``locked out: yes``
and counted as real — nothing on stderr said the key log opened nothing (``--list`` alone showed it). Now a
key log that opens none of the capture's TLS connections is said on stderr; one beside the capture (not
asked for) is then not used, the replay goes on as without a key log (its lockouts resting on the offline
TVS qualified); one given to ``--keylog`` is still used (asked for).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from phoneemu.cli import main

ROOT = Path(__file__).resolve().parents[2]
MIGRATION = ROOT / "captures" / "migration-itl-signer-unknown.pcap"
#: another catalogue capture's key log: its secrets open none of the migration's connections
OTHER_KEYS = ROOT / "captures" / "callmanager-regenerated-via-tvs.keys"
PHONE = "0A0000000501"
OPENS_NONE = "opens none of its 2 TLS connections (another capture's key log?): not used"


def _capture(tmp_path: Path) -> Path:
    """The migration capture as ``tmp_path/capC.pcap``, another capture's key log beside it."""
    pcap = tmp_path / "capC.pcap"
    shutil.copyfile(MIGRATION, pcap)
    shutil.copyfile(OTHER_KEYS, tmp_path / "capC.keys")
    return pcap


def test_another_captures_key_log_beside_is_said_and_not_used(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    pcap = _capture(tmp_path)
    assert main(["replay", str(pcap), "--mac", PHONE, "--json"]) == 1
    said = capsys.readouterr()
    doc = json.loads(said.out)
    assert f"the TLS key log beside the capture, {tmp_path / 'capC.keys'}, {OPENS_NONE}" in said.err, said.err
    assert "no key-log entry for client random" in said.err
    assert doc["offline"]["tvs"] == "unavailable"
    assert doc["boots"][-1]["locked_out_tvs_offline"] is True
    assert main(["replay", str(pcap), "--all", "--json"]) == 1
    said = capsys.readouterr()
    assert OPENS_NONE in said.err
    assert json.loads(said.out)["locked_out_tvs_offline"] == 2


def test_another_captures_key_log_given_is_said_and_used(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    pcap = _capture(tmp_path)
    keys = tmp_path / "capC.keys"
    assert main(["replay", str(pcap), "--all", "--keylog", str(keys)]) == 1
    said = capsys.readouterr()
    assert f"the TLS key log {keys} opens none of the capture's 2 TLS connections (another capture's key " \
        "log?): the phones' TVS questions are taken as not in the capture" in said.err, said.err
    assert "answers from the capture (0 exchanges decrypted)" in said.out
