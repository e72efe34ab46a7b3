"""Option errors of ``boot`` and ``fleet boot`` found by an audit: each one line naming the option, the
path or value and why, exit 2, no traceback, before any boot.

* ``fleet boot --packets N`` without ``--call`` was ignored: refused, naming both options.
* ``--http-port 0`` passed the parse (a port, 0..65535) and was refused later by the boot target, naming
  its field (``http_port: http_port 0 outside 1..65535``) where ``--http-port 70000`` was argparse's
  ``argument --http-port: 70000 is outside 0..65535``: now one message, at parse time, in both commands.
* ``boot --packets N`` without ``--call`` was ignored too (with ``--answer`` as well: the caller's INVITE
  says how many packets an answered call carries): refused as in ``fleet boot``.
* ``--sips-port 0`` (``--register``'s TLS port) was taken silently, the phone dialling port 0, where 70000
  was ``... outside 0..65535``: refused at parse time as ``--http-port``, 1..65535, in both commands.
* ``--flash FILE`` (boot, fleet boot) and ``fleet boot --models DIR`` gave the OSError's text naming the
  file but not the option (``/tmp/f: File exists``, ``/tmp: Is a directory``).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import one_line_cli_error

NOW = 1_780_000_000
MAC = "001122334455"
BOOT = ["boot", "--tftp", "127.0.0.1:9", "--mac", MAC, "--timeout", "0.2"]
FLEET = ["fleet", "boot", "--count", "1", "--tftp", "127.0.0.1:9", "--shards", "0", "--timeout", "0.2", "-q"]


def _no_boot(monkeypatch: pytest.MonkeyPatch) -> None:
    """A boot or a storm that started would be the bug: fail at once."""
    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("a boot started")
    monkeypatch.setattr("phoneemu.commands.fleet.run_fleet", refuse)
    monkeypatch.setattr("phoneemu.phone.phone.Phone.boot", refuse)


# ---------------------------------------------------------------------------------- fleet --packets
def test_fleet_packets_without_call_is_refused_naming_both_options(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _no_boot(monkeypatch)
    for extra in ([], ["--register"]):
        line = one_line_cli_error([*FLEET, "--packets", "5", *extra], capsys)
        assert line == ("phoneemu fleet boot: --packets goes with --call (the media packets of each "
                        "phone's call)")


def test_fleet_packets_reach_the_call_and_default_to_10(monkeypatch: pytest.MonkeyPatch) -> None:
    """With --call, --packets N is each phone's call's; without --packets, 10 (its documented default)."""
    specs: list[Any] = []

    def fake_run_fleet(spec: Any, **_k: Any) -> Any:
        specs.append(spec)
        raise KeyboardInterrupt  # before any shard: the run ends there, with its reports
    monkeypatch.setattr("phoneemu.commands.fleet.run_fleet", fake_run_fleet)
    assert main([*FLEET, "--register", "--call", "moh", "--packets", "7"]) == 130
    assert main([*FLEET, "--register", "--call", "moh"]) == 130
    assert [s.call for s in specs] == [("moh", 7), ("moh", 10)]


# ----------------------------------------------------------------------------------- boot --packets
def test_boot_packets_without_call_is_refused_naming_both_options(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _no_boot(monkeypatch)
    for extra in ([], ["--register"]):
        line = one_line_cli_error([*BOOT, "--packets", "5", *extra], capsys)
        assert line == "phoneemu boot: --packets goes with --call (the media packets of the phone's call)"
    line = one_line_cli_error([*BOOT, "--packets", "5", "--register", "--answer", "3"], capsys)
    assert line == ("phoneemu boot: --packets goes with --call (the media packets of the phone's call; with "
                    "--answer, the caller says how many)")


def test_boot_realtime_without_call_or_answer_is_refused(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """--realtime paces a call's media: without --call or --answer it was ignored silently."""
    _no_boot(monkeypatch)
    for extra in ([], ["--register"]):
        line = one_line_cli_error([*BOOT, "--realtime", *extra], capsys)
        assert line == ("phoneemu boot: --realtime goes with --call or --answer (it paces the call's media, "
                        "one packet every 20 ms)")


def test_boot_realtime_with_call_or_answer_reaches_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def fake_call_of(args: Any) -> Any:
        seen.append((args.call, args.answer, args.realtime))
        raise KeyboardInterrupt  # before the boot: the command ends there
    monkeypatch.setattr("phoneemu.commands.boot.call_of", fake_call_of)
    _no_boot(monkeypatch)
    assert main([*BOOT, "--register", "--call", "moh", "--realtime"]) == 130
    assert main([*BOOT, "--register", "--answer", "3", "--realtime"]) == 130
    assert seen == [("moh", None, True), (None, 3.0, True)]


def test_boot_packets_reach_the_call_and_default_to_10(monkeypatch: pytest.MonkeyPatch) -> None:
    """With --call, --packets N is the call's; without --packets, 10 (its documented default)."""
    calls: list[Any] = []

    def fake_call_of(args: Any) -> Any:
        calls.append((args.call, args.packets))
        raise KeyboardInterrupt  # before the boot: the command ends there
    monkeypatch.setattr("phoneemu.commands.boot.call_of", fake_call_of)
    _no_boot(monkeypatch)
    assert main([*BOOT, "--register", "--call", "moh", "--packets", "7"]) == 130
    assert main([*BOOT, "--register", "--call", "moh"]) == 130
    assert calls == [("moh", 7), ("moh", 10)]


# ----------------------------------------------------------------------------------- --sips-port 0
@pytest.mark.parametrize("value", ["0", "70000", "-1"])
def test_sips_port_out_of_range_is_refused_at_parse_time_in_both_commands(
        value: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """0 was taken (the phone then dialled port 0 over TLS); 70000 was "... outside 0..65535"."""
    _no_boot(monkeypatch)
    said = set()
    for argv in (BOOT, FLEET):
        line = _usage_error([*argv, "--register", "127.0.0.1", "--sips-port", value], capsys)
        said.add(line.split(": error: ", 1)[1])
    assert len(said) == 1, said
    message = said.pop()
    assert message.startswith(f"argument --sips-port: {value} is outside 1..65535"), message
    if value == "0":
        assert "no port a phone can ask" in message and "5061" in message, message


def test_sips_port_that_is_not_a_number_is_said_as_for_any_port(capsys: pytest.CaptureFixture[str]) -> None:
    line = _usage_error([*BOOT, "--register", "--sips-port", "x"], capsys)
    assert line.endswith("argument --sips-port: 'x' is not a port number (ASCII digits 0-9)")


# ----------------------------------------------------------------------------------- --http-port 0
@pytest.fixture
def lab(tmp_path: Path) -> Path:
    c = LabCluster.init(tmp_path / "lab", seed=5, key_spec="rsa1024", now=NOW)
    c.add_phones([MAC], now=NOW)
    return c.root


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("value", ["0", "70000", "-1"])
def test_http_port_out_of_range_is_one_message_in_both_commands_on_every_path(
        value: str, lab: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The same argparse line, whether the address is --tftp's or the lab's, in boot and fleet boot (0 was
    "http_port: http_port 0 outside 1..65535", after the banner; 70000 "... outside 0..65535")."""
    _no_boot(monkeypatch)
    said = set()
    for argv in (BOOT, ["boot", "--lab", str(lab), "--mac", MAC], FLEET,
                 ["fleet", "boot", "--count", "1", "--lab", str(lab), "--mac-start", MAC, "--shards", "0"]):
        line = _usage_error([*argv, "--http-port", value], capsys)
        said.add(line.split(": error: ", 1)[1])
    assert len(said) == 1, said
    message = said.pop()
    assert message.startswith(f"argument --http-port: {value} is outside 1..65535"), message
    if value == "0":
        assert "--no-http" in message


def test_http_port_that_is_not_a_number_is_said_as_for_any_port(capsys: pytest.CaptureFixture[str]) -> None:
    line = _usage_error([*BOOT, "--http-port", "x"], capsys)
    assert line.endswith("argument --http-port: 'x' is not a port number (ASCII digits 0-9)")


# ------------------------------------------------------------------------------ --flash, --models
def test_boot_flash_that_is_a_file_names_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _no_boot(monkeypatch)
    f = tmp_path / "flash"
    f.write_bytes(b"x")
    for mac in (["--mac", MAC], []):  # without --mac it was "--mac is required (no phone.json ...)"
        line = one_line_cli_error(["boot", "--tftp", "127.0.0.1:9", *mac, "--flash", str(f)], capsys)
        assert line == (f"phoneemu boot: --flash {f}: is a file, not a folder (the phone keeps its state in "
                        "a folder)")
    line = one_line_cli_error([*BOOT, "--flash", str(f / "sub")], capsys)
    assert line == f"phoneemu boot: --flash {f / 'sub'}: cannot be made: {f} is a file, not a folder"
    assert f.read_bytes() == b"x"


def test_boot_flash_that_cannot_be_read_or_written_names_the_option(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """As root every folder is readable: os.access is what the check asks."""
    _no_boot(monkeypatch)
    flash = tmp_path / "flash"
    flash.mkdir()
    denied = {os.R_OK | os.X_OK}
    monkeypatch.setattr("phoneemu.commands.boot.os.access", lambda _p, mode: mode not in denied)
    line = one_line_cli_error([*BOOT, "--flash", str(flash)], capsys)
    assert line == f"phoneemu boot: --flash {flash}: not readable (the phone reads and keeps its state there)"
    denied = {os.W_OK, os.W_OK | os.X_OK}
    line = one_line_cli_error([*BOOT, "--flash", str(flash)], capsys)
    assert line == f"phoneemu boot: --flash {flash}: not writable (the phone reads and keeps its state there)"
    line = one_line_cli_error([*BOOT, "--flash", str(flash / "new")], capsys)
    assert line == f"phoneemu boot: --flash {flash / 'new'}: cannot be made: folder {flash} is not writable"
    assert not (flash / "new").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_boot_flash_unreadable_for_real(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flash = tmp_path / "flash"
    flash.mkdir(mode=0o200)
    try:
        assert "--flash" in one_line_cli_error([*BOOT, "--flash", str(flash)], capsys)
    finally:
        flash.chmod(0o700)


def test_fleet_flash_that_is_a_file_names_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _no_boot(monkeypatch)
    f = tmp_path / "flash"
    f.write_bytes(b"x")
    want = f"phoneemu fleet boot: --flash {f}: is a file, not a folder (one folder per phone is kept in it)"
    assert one_line_cli_error([*FLEET, "--flash", str(f)], capsys) == want
    # without --count: was "--count N is required", the --flash given not said to be a file
    argv = ["fleet", "boot", "--tftp", "127.0.0.1:9", "--flash", str(f), "-q"]
    assert one_line_cli_error(argv, capsys) == want
    line = one_line_cli_error([*FLEET, "--flash", str(f / "sub")], capsys)
    assert line.startswith(f"phoneemu fleet boot: --flash {f / 'sub'}: cannot make the folder: "), line


def test_fleet_flash_that_cannot_be_listed_names_the_option(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """--flash DIR without --count lists DIR: its failure was "fleet-flash: DIR: cannot list: ..."."""
    _no_boot(monkeypatch)
    flash = tmp_path / "fleet"
    flash.mkdir()

    def denied(_path: Any) -> Any:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(flash))
    monkeypatch.setattr("phoneemu.phone.flashes.os.scandir", denied)
    line = one_line_cli_error(["fleet", "boot", "--tftp", "127.0.0.1:9", "--flash", str(flash), "-q"], capsys)
    assert line == f"phoneemu fleet boot: --flash {flash}: cannot list: Permission denied"


def test_fleet_models_that_is_a_folder_or_missing_names_the_option(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _no_boot(monkeypatch)
    for count in (["--count", "1"], []):
        argv = ["fleet", "boot", *count, "--tftp", "127.0.0.1:9", "--models", str(tmp_path), "-q"]
        line = one_line_cli_error(argv, capsys)
        assert line == f"phoneemu fleet boot: --models {tmp_path}: is a folder, not a file"
    missing = tmp_path / "none.csv"
    line = one_line_cli_error([*FLEET, "--models", str(missing)], capsys)
    assert line == f"phoneemu fleet boot: --models {missing}: No such file or directory"
    models = tmp_path / "site.csv"
    models.write_text(f"{MAC},Cisco 7962\n")

    def denied(path: Any, *_a: Any, **_k: Any) -> Any:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
    monkeypatch.setattr("phoneemu.scenario.phone_models.read_at_most", denied)
    line = one_line_cli_error([*FLEET, "--models", str(models)], capsys)
    assert line == f"phoneemu fleet boot: --models {models}: Permission denied"
