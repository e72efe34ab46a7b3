"""A fuzz run that cannot write a file (a full disk: the command's input file, a finding's folder) stops as a
Ctrl-C does, the findings so far kept and counted (phoneemu.fuzz.engine ``FuzzReport.error``), with
summary.json (``error``) and a line naming the file and where to go on, exit 2 (phoneemu.commands._fuzz_run
``_fuzz_end``); was: the OSError left the run — no summary.json, so no ``next_run_index`` to go on from —
and for a full disk said ``phoneemu fuzz: No space left on device``, naming no file. A full disk is
``/dev/full`` here (every write: ENOSPC), reached through a link where the run writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.fuzz.engine import FuzzConfig, fuzz
from phoneemu.fuzz.targets import CommandTarget, Outcome, PythonTarget
from tests.minimise_helpers import always

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")


def _full_link(tmp_path: Path) -> Path:
    link = tmp_path / "full-disk-input.tlv"
    link.symlink_to("/dev/full")
    return link


def test_a_command_input_not_written_names_the_file(tmp_path: Path) -> None:
    """Was: ``OSError: [Errno 28] No space left on device`` (a failed write names no file)."""
    target = CommandTarget("true {}", workdir=tmp_path / "w")
    made = target.path
    target.path = _full_link(tmp_path)
    with pytest.raises(OSError) as caught:
        target.run(b"input")
    target.close()  # the link, not /dev/full
    made.unlink()
    assert caught.value.filename == str(tmp_path / "full-disk-input.tlv")
    assert caught.value.strerror == os.strerror(28)


def test_a_full_disk_stops_the_command_run_with_its_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The disk fills at the 4th input: 3 run (each a crash, one finding), summary.json says so and where to
    go on; the finding found before it is there."""
    script = tmp_path / "crash.sh"
    script.write_text("#!/bin/sh\nexit 134\n")
    script.chmod(0o755)
    link = _full_link(tmp_path)
    real_run = CommandTarget.run
    runs = 0

    def run_until_full(self: CommandTarget, data: bytes) -> Outcome:
        nonlocal runs
        runs += 1
        if runs == 4:
            self.path.unlink()
            self.path = link
        return real_run(self, data)

    monkeypatch.setattr(CommandTarget, "run", run_until_full)
    out = tmp_path / "fz"
    code = main(["fuzz", "--format", "itl", "--target-cmd", f"{script} {{}}", "--runs", "10", "--seed", "5",
                 "--run-index", "100", "--no-minimize", "--out", str(out), "-q"])
    captured = capsys.readouterr()
    assert code == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["error"] == f"{link}: {os.strerror(28)}"
    assert (summary["execs"], summary["next_run_index"], summary["statuses"]) == (3, 103, {"crash": 3})
    assert summary["interrupted"] is False
    (finding,) = summary["findings"]
    assert (finding["signature"], finding["count"], finding["first_run"]) == ("exit status 134", 3, 100)
    info = json.loads((Path(finding["dir"]) / "info.json").read_text())
    assert info["count"] == 3
    (line,) = [x for x in captured.err.splitlines() if "stopped" in x]
    assert str(link) in line and "--seed 5 --run-index 103" in line, captured.err


def test_a_finding_not_saved_stops_the_run_with_the_error(tmp_path: Path) -> None:
    """In process: the finding's folder cannot be made (``crashes`` is a file): the loop ends with the
    error, the finding counted (no folder: ``directory`` None), nothing raised."""
    out = tmp_path / "fz"
    out.mkdir()
    (out / "crashes").write_bytes(b"")

    def crash(_data: bytes) -> None:
        raise IndexError("deliberate")

    target = PythonTarget(crash)
    report = fuzz(FuzzConfig(fmt="itl", runs=5, out=out, minimize=False), target, always(b"x"))
    assert report.error is not None and str(out / "crashes") in report.error
    assert report.execs == 1 and report.statuses == {"crash": 1}
    (finding,) = report.findings.values()
    assert finding.directory is None
