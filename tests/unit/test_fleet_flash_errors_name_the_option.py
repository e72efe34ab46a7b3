"""``--fleet-flash DIR`` errors name the option as typed (red team, fleet).

``phone show|erase|factory-reset --fleet-flash DIR`` and ``predict --fleet-flash DIR`` said
``fleet-flash: DIR: empty ...`` (the error's path, neither the option nor its field): each now opens with
``--fleet-flash DIR:``, as other option errors do; ``fleet boot --flash DIR`` (the same folder walk) keeps
naming its own option.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from phoneemu.errors import PhoneEmuError
from phoneemu.phone.flashes import fleet_folders
from tests.helpers import one_line_cli_error

NEW_FILE = "ITLFile.tlv"  # predict's new file: never read, the fleet folder is refused first


def _commands(folder: Path, new_file: Path) -> list[tuple[str, list[str]]]:
    """(the command as typed, its argv) of every command taking ``--fleet-flash folder``."""
    return [("phoneemu phone show", ["phone", "show", "--fleet-flash", str(folder)]),
            ("phoneemu phone erase", ["phone", "erase", "--fleet-flash", str(folder)]),
            ("phoneemu phone factory-reset", ["phone", "factory-reset", "--fleet-flash", str(folder)]),
            ("phoneemu predict", ["predict", "--fleet-flash", str(folder), str(new_file)])]


def test_an_empty_or_missing_fleet_folder_names_the_option(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "none"
    new_file = tmp_path / NEW_FILE
    new_file.write_bytes(b"x")
    for folder, why in ((empty, "empty (no phone flash folder in it)"),
                        (missing, "no such folder (one flash folder per phone, as fleet boot --flash keeps "
                                  "them)")):
        for command, argv in _commands(folder, new_file):
            assert one_line_cli_error(argv, capsys) == f"{command}: --fleet-flash {folder}: {why}"


def test_a_fleet_folder_that_cannot_be_listed_names_the_option(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    new_file = tmp_path / NEW_FILE
    new_file.write_bytes(b"x")

    def denied(path: Any) -> Any:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
    monkeypatch.setattr("phoneemu.phone.flashes.os.scandir", denied)
    for command, argv in _commands(fleet, new_file):
        said = one_line_cli_error(argv, capsys)
        assert said == f"{command}: --fleet-flash {fleet}: cannot list: Permission denied"
    # fleet boot --flash DIR walks the folder the same way: its own option named, once
    line = one_line_cli_error(["fleet", "boot", "--tftp", "127.0.0.1:9", "--flash", str(fleet), "-q"], capsys)
    assert line == f"phoneemu fleet boot: --flash {fleet}: cannot list: Permission denied"


def test_a_fleet_folder_over_the_limit_names_the_option(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = tmp_path / "fleet"
    for name in ("a", "b", "c"):
        (fleet / name).mkdir(parents=True)
    with pytest.raises(PhoneEmuError) as exc:
        fleet_folders(fleet, 2, what="show")
    assert str(exc.value) == (f"--fleet-flash {fleet}: more than 2 entries; show at most 2 phones at once "
                              "(split the folder)")
    assert exc.value.path == "fleet-flash"
    monkeypatch.setattr("phoneemu.scenario.predict.MAX_FLEET", 2)
    new_file = tmp_path / NEW_FILE
    new_file.write_bytes(b"x")
    line = one_line_cli_error(["predict", "--fleet-flash", str(fleet), str(new_file)], capsys)
    assert line.startswith(f"phoneemu predict: --fleet-flash {fleet}: more than 2 entries"), line
