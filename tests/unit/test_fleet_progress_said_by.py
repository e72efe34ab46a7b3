"""``fleet boot``'s progress lines in a log (stderr not a terminal) start with the command as typed,
``phoneemu fleet boot: booted ...`` (:mod:`phoneemu.cli` rules, ours); the line redrawn on a terminal is
as it was. Before, the plain lines were the only stderr lines of ``fleet boot`` said by no one."""

from __future__ import annotations

import io

import pytest

from phoneemu.cli import main
from phoneemu.fleet.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_plain_progress_line_is_said_by_the_command() -> None:
    log = io.StringIO()
    p = Progress(log, log_interval=3600.0, said_by="phoneemu fleet boot")
    p(1, 1, 2, 0.5)
    p(2, 1, 2, 1.0, failing={"H.3-config-transport-failed": 1})
    assert log.getvalue().splitlines() == [
        "phoneemu fleet boot: booted 1/2 failed 0 (50% done) 2/s 0.5s",
        "phoneemu fleet boot: booted 1/2 failed 1 (100% done) 2/s 1.0s; most failed: "
        "H.3-config-transport-failed 1"]


def test_the_redrawn_terminal_line_is_as_it_was() -> None:
    tty = _Terminal()
    p = Progress(tty, said_by="phoneemu fleet boot")
    p(1, 1, 1, 0.5)
    p.close()
    assert tty.getvalue() == "\rbooted 1/1 failed 0 (100% done) 2/s 0.5s\x1b[K\n"


def test_fleet_boot_progress_in_a_log_names_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    """A one-phone storm at a port where nothing listens (loopback, in this process): its progress line
    on stderr (not a terminal under pytest) is ``phoneemu fleet boot: booted 0/1 ...``."""
    rc = main(["fleet", "boot", "--count", "1", "--tftp", "127.0.0.1:9", "--shards", "0", "--no-http",
               "--timeout", "0.05", "--retries", "0"])
    err = capsys.readouterr().err
    assert rc == 1, err
    progress = [line for line in err.splitlines() if "booted 0/1" in line]
    said = all(line.startswith("phoneemu fleet boot: booted 0/1 failed 1 ") for line in progress)
    assert progress and said, err
