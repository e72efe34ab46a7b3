"""``check_writable`` asks the folder, not ``os.access`` alone (red team, fleet).

As root ``os.access`` says yes to writing anywhere, so ``fleet boot --json /proc/x.json`` passed the
check and failed only after the storm, its report lost. The check now makes (and removes at once) the
temporary file the report's write makes beside it: refused before any work, nothing left behind, an
existing file never opened. For another user ``os.access`` already refused ``/proc``: the test holds
either way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.errors import PhoneEmuError
from phoneemu.files import check_writable

PROC = Path("/proc")
needs_proc = pytest.mark.skipif(not (PROC / "self").is_dir(), reason="no /proc here")


@needs_proc
@pytest.mark.parametrize("name", ["phoneemu-report.json", "version"])  # a new file, an existing one
def test_a_report_where_no_file_can_be_made_is_refused(name: str) -> None:
    with pytest.raises(PhoneEmuError) as exc:
        check_writable(PROC / name, "--json")
    assert str(exc.value).startswith(f"--json {PROC / name}: not writable"), str(exc.value)
    assert exc.value.path == "json"


@needs_proc
def test_fleet_boot_refuses_such_a_report_before_any_boot(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("a storm started")
    monkeypatch.setattr("phoneemu.commands.fleet.run_fleet", refuse)
    report = PROC / "phoneemu-report.json"
    assert main(["fleet", "boot", "--count", "1", "--tftp", "127.0.0.1:9", "-q", "--json", str(report)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"phoneemu fleet boot: --json {report}: not writable"), err
    assert len(err.strip().splitlines()) == 1, err


def test_the_check_leaves_nothing_behind_and_an_existing_file_untouched(tmp_path: Path) -> None:
    check_writable(tmp_path / "new.json", "--json")
    assert list(tmp_path.iterdir()) == []  # neither the report nor a trial file
    kept = tmp_path / "old.json"
    kept.write_bytes(b"the last run's report")
    os.utime(kept, (1_000_000, 1_000_000))
    check_writable(kept, "--json")
    assert kept.read_bytes() == b"the last run's report" and kept.stat().st_mtime == 1_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]


def test_a_fifo_is_asked_without_being_opened(tmp_path: Path) -> None:
    """A FIFO (written in place) is never opened by the check: with no reader that would block."""
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    check_writable(fifo, "--json")  # returns at once: no open, no trial file beside it
    assert [p.name for p in tmp_path.iterdir()] == ["report.fifo"]
