"""A named pipe (or a socket, a link to nothing) given as a phone's flash is said as what it is, as a file
given as one is (:func:`phoneemu.commands._installed.file_not_flash`), without opening it (a FIFO's open
waits for a writer): ``predict --flash``, ``replay --flash``, ``predict --fleet-flash``. Was: "no such flash
directory" / "no such folder", as if nothing were there.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.commands._installed import file_not_flash

ROOT = Path(__file__).resolve().parents[2]
MIGRATION = ROOT / "captures" / "migration-itl-signer-unknown.pcap"
ITL = ROOT / "tests" / "vectors" / "itl_lab.tlv"
NOT_A_FLASH = "not a phone's flash directory (boot --flash DIR makes one)"


@pytest.mark.parametrize("command", ["predict", "replay"])
def test_a_fifo_as_flash_is_said_as_one(tmp_path: Path, command: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "flash"
    os.mkfifo(fifo)
    given = [str(MIGRATION), "--mac", "0A0000000501"] if command == "replay" else [str(ITL)]
    assert main([command, *given, "--flash", str(fifo)]) == 2
    out, err = capsys.readouterr()
    said = f"--flash {fifo}: a named pipe (FIFO), {NOT_A_FLASH}"
    assert out == "" and err == f"phoneemu {command}: {said}\n", err


def test_a_fifo_as_fleet_flash_is_not_a_folder_of_flashes(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "fleet"
    os.mkfifo(fifo)
    assert main(["predict", "--fleet-flash", str(fifo), str(ITL)]) == 2
    err = capsys.readouterr().err
    assert f"--fleet-flash {fifo}: a named pipe (FIFO), not a folder of phone flashes" in err, err


def test_other_kinds_and_what_is_left_to_each_command(tmp_path: Path) -> None:
    dangling = tmp_path / "gone"
    dangling.symlink_to(tmp_path / "nothing")
    assert file_not_flash(dangling) == f"{dangling}: a link to nothing, {NOT_A_FLASH}"
    sock_path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(sock_path))
        assert file_not_flash(sock_path) == f"{sock_path}: a socket, {NOT_A_FLASH}"
    assert file_not_flash(Path("/dev/null")) == f"/dev/null: a character device, {NOT_A_FLASH}"
    assert file_not_flash(tmp_path) is None  # a folder: the flash
    assert file_not_flash(tmp_path / "missing") is None  # each command's "no such ..."
