"""``inspect`` of a signed or encrypted config with no ``--cert`` says where the TFTP signer is: a lab's
``DIR/certs/callmanager.pem``, or an ITL holding it (``--cert DIR/tftp/ITLFile.tlv``), both of which verify
it (was "give the TFTP signer with --cert", and the help's example ``tftp.pem``, a file no lab has)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.formats import encrypted
from phoneemu.lab.cluster import LabCluster
from tests.signer_helpers import file_signer, self_signed

NOW = 1_780_000_000
MAC = "0A00000005D1"
HINT = ("signature not checked (give the TFTP signer with --cert: a lab's DIR/certs/callmanager.pem, or an "
        "ITL holding it, e.g. --cert DIR/tftp/ITLFile.tlv)")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("signer-hint") / "lab"
    LabCluster.init(folder, seed=53, key_spec="rsa1024", now=NOW, name="s").add_phones([MAC], now=NOW)
    return folder


def _notes(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert main(["inspect", *argv, "--json"]) == 0
    notes: list[str] = json.loads(capsys.readouterr().out)["notes"]
    return notes


def test_a_signed_config_without_cert_says_where_the_signer_is(lab: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = str(lab / "tftp" / f"SEP{MAC}.cnf.xml.sgn")
    assert HINT in _notes(capsys, config)
    assert main(["inspect", config]) == 0
    assert f"Note: {HINT}" in capsys.readouterr().out
    # both places the hint names verify it
    for cert in (lab / "certs" / "callmanager.pem", lab / "tftp" / "ITLFile.tlv"):
        assert main(["inspect", config, "--cert", str(cert)]) == 0
        assert "verified successfully" in capsys.readouterr().out


def test_an_encrypted_config_without_cert_says_where_the_signer_is(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    signer = self_signed("CN=hint-tftp;O=phoneemu", seed="inspect-signer-hint", serial=0x5D1)
    path = tmp_path / f"SEP{MAC}.cnf.xml.enc.sgn"
    path.write_bytes(encrypted.build_symmetric(plaintext=b"<device/>", filename=path.name,
                                               signer=file_signer(signer), key=bytes(16), timestamp=NOW,
                                               rand=os.urandom))
    assert HINT in _notes(capsys, str(path))
