"""A file given as a phone's flash is said as what it is, in every command alike
(:func:`phoneemu.commands._installed.file_not_flash`): ``predict --flash FILE``, ``replay --flash FILE`` and
``phone erase|factory-reset|set-key --flash FILE`` as ``phone show --flash FILE`` says it, ``phone
show|erase|factory-reset --fleet-flash FILE`` as not a folder of phone flashes; a path that does not exist
keeps its "no such ...". ``replay --all --installed-config-dir DIR``: a file of another kind there is named
as that option's in the phone's note.

Was: "--flash DIR: cert.der: no such flash directory" (predict, replay), "no such flash directory" (phone's
other actions), "--fleet-flash cert.der: no such folder", as if nothing were there; the note named
``--installed-config``, an option replay --all was not given.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from phoneemu.cli import main
from tests.signer_helpers import self_signed

ROOT = Path(__file__).resolve().parents[2]
MIGRATION = ROOT / "captures" / "migration-itl-signer-unknown.pcap"
NOT_A_FLASH = "not a phone's flash directory (boot --flash DIR makes one)"
NOT_A_FLEET = "not a folder of phone flashes (fleet boot --flash DIR makes one)"


def _cert(path: Path) -> Path:
    _key, cert = self_signed("CN=flash-is-a-file;O=phoneemu", seed="flash-is-a-file", serial=0xF1)
    path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    return path


def _said(command: str, text: str) -> str:
    return f"phoneemu {command}: {text}\n"


def _cert_said(cert: Path) -> str:
    """What is said of ``cert`` (:func:`_cert`) given as a phone's flash."""
    return (f"{cert}: a DER file (CERTIFICATE), {NOT_A_FLASH}: phoneemu inspect {cert} names it and what to "
            "do with it")


@pytest.mark.parametrize("command", ["predict", "replay"])
def test_predict_and_replay_say_what_a_flash_file_is(tmp_path: Path, command: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    cert = _cert(tmp_path / "tvs.der")
    given = [str(MIGRATION), "--mac", "0A0000000501"] if command == "replay" else [str(cert)]
    assert main([command, *given, "--flash", str(cert)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == _said(command, f"--flash {_cert_said(cert)}"), err


@pytest.mark.parametrize("action", [["erase"], ["factory-reset"], ["set-key", "00" * 16]])
def test_every_phone_action_says_what_a_flash_file_is(tmp_path: Path, action: list[str],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    cert = _cert(tmp_path / "tvs.der")
    assert main(["phone", action[0], "--flash", str(cert), *action[1:]]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == _said(f"phone {action[0]}", _cert_said(cert)), err
    assert cert.read_bytes() == _cert(tmp_path / "again.der").read_bytes()  # the file is left as it was


@pytest.mark.parametrize("action", ["show", "erase", "factory-reset"])
def test_a_fleet_flash_file_is_not_a_folder_of_phone_flashes(tmp_path: Path, action: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    itl = tmp_path / "ITLFile.tlv"
    itl.write_bytes((ROOT / "tests" / "vectors" / "itl_lab.tlv").read_bytes())
    assert main(["phone", action, "--fleet-flash", str(itl)]) == 2
    out, err = capsys.readouterr()
    said = f"--fleet-flash {itl}: an ITL, {NOT_A_FLEET}: phoneemu inspect {itl} decodes it"
    assert out == "" and err == _said(f"phone {action}", said), err


@pytest.mark.parametrize("argv", [["predict", "NEW"], ["replay", str(MIGRATION), "--mac", "0A0000000501"],
                                  ["phone", "erase"]])
def test_a_missing_flash_still_says_there_is_none(tmp_path: Path, argv: list[str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--flash", str(tmp_path / "none")]) == 2
    assert "no such flash directory" in capsys.readouterr().err
    assert main(["phone", "show", "--fleet-flash", str(tmp_path / "none")]) == 2
    assert f"--fleet-flash {tmp_path / 'none'}: no such folder" in capsys.readouterr().err


def test_replay_all_names_its_config_folder_option_in_a_wrong_files_note(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    wrong = _cert(configs / "SEP0A0000000501.cnf.xml.sgn")
    assert main(["replay", str(MIGRATION), "--all", "--installed-config-dir", str(configs), "--json"]) == 1
    one = json.loads(capsys.readouterr().out)["records"][0]
    assert one["mac"] == "0A0000000501"
    assert one["notes"] == [f"--installed-config-dir {wrong}: a DER file (CERTIFICATE), not a config "
                            "(.cnf.xml, .cnf.xml.sgn or .enc.sgn): put the phone's SEP<MAC>.cnf.xml.sgn (or "
                            ".cnf.xml) there; a certificate TVS vouches for is --tvs-cert's (PEM): holds no "
                            "config"]


@pytest.mark.parametrize("command", [["predict", "--fleet-flash"], ["replay", str(MIGRATION), "--all",
                                                                    "--fleet-flash"]])
def test_predict_and_replay_say_what_a_fleet_flash_file_is(tmp_path: Path, command: list[str],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Was: "--fleet-flash cert.der: no such folder"."""
    cert = _cert(tmp_path / "tvs.der")
    files = [str(cert)] if command[0] == "predict" else []
    assert main([*command, str(cert), *files]) == 2
    err = capsys.readouterr().err
    assert f"--fleet-flash {cert}: a DER file (CERTIFICATE), {NOT_A_FLEET}" in err, err


def test_tvs_says_what_a_flash_file_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Was: "cert.der: no such flash directory"."""
    cert = _cert(tmp_path / "tvs.der")
    assert main(["tvs", str(cert), "--flash", str(cert)]) == 2
    err = capsys.readouterr().err
    assert f"--flash {_cert_said(cert)}" in err, err
