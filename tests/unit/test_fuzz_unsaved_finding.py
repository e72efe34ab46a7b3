"""A fuzz finding whose folder could not be written (a full disk alike: ``crashes`` is a file here) is
counted, not saved (phoneemu.fuzz.engine ``FuzzReport.unsaved``), and going on runs its input again
(``FuzzReport.next_index``, summary.json's ``next_run_index``); the line that says the run stopped names
it, its summary.json entry has ``saved: false``, its results line ``-> not saved`` (phoneemu.commands.
_fuzz_run). Was: "the findings so far are saved (to go on: ... --run-index <past it>)", ``-> None``: the
crash found was lost. In process, supervised (a child running the inputs in batches), ``--target-cmd``,
and a hang found at Ctrl-C (was: its OSError left the run, no summary.json)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.fuzz.engine import FuzzConfig, FuzzReport, fuzz
from phoneemu.fuzz.findings import Finding
from phoneemu.fuzz.targets import PythonTarget
from tests.minimise_helpers import always


def _out_with_no_room_for_findings(tmp_path: Path) -> Path:
    out = tmp_path / "fz"
    out.mkdir()
    (out / "crashes").write_bytes(b"")  # no finding's folder can be made in it
    return out


def _crash(_data: bytes) -> None:
    raise IndexError("deliberate")


def test_the_loop_goes_on_at_the_unsaved_finding(tmp_path: Path) -> None:
    out = _out_with_no_room_for_findings(tmp_path)
    report = fuzz(FuzzConfig(fmt="itl", runs=5, out=out, minimize=False), PythonTarget(_crash), always(b"x"),
                  start_index=40)
    assert report.error is not None and report.execs == 1
    (finding,) = report.findings.values()
    assert report.unsaved == [finding.signature] and finding.first_run == 40
    assert report.next_index == 40  # was: 41, past it


def test_a_saved_finding_is_gone_past(tmp_path: Path) -> None:
    report = fuzz(FuzzConfig(fmt="itl", runs=3, out=tmp_path, minimize=False), PythonTarget(_crash),
                  always(b"x"), start_index=40)
    assert report.error is None and report.unsaved == [] and report.next_index == 43


@pytest.mark.parametrize("supervised", [True, False], ids=["supervised", "in-process"])
def test_cli_target_names_the_unsaved_finding_and_runs_it_again(
        supervised: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from phoneemu.fuzz import supervise

    if supervised and not supervise.can_supervise():
        pytest.skip("no child process for a --target here")
    batches = 0
    real_batch = supervise.SupervisedTarget.run_batch

    def counted(self: supervise.SupervisedTarget, *a: object, **kw: object) -> object:
        nonlocal batches
        batches += 1
        return real_batch(self, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(supervise.SupervisedTarget, "run_batch", counted)
    if not supervised:
        monkeypatch.setattr(supervise, "can_supervise", lambda: False)
    module = f"tfz_crash_{'sup' if supervised else 'inproc'}"
    (tmp_path / f"{module}.py").write_text("def parse(data):\n    raise IndexError('deliberate')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = _out_with_no_room_for_findings(tmp_path)
    code = main(["fuzz", "--format", "itl", "--target", f"{module}:parse", "--runs", "5", "--seed", "7",
                 "--run-index", "30", "--no-minimize", "--out", str(out), "-q"])
    captured = capsys.readouterr()
    assert code == 2 and (batches > 0) == supervised
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["execs"], summary["next_run_index"]) == (1, 30)
    (finding,) = summary["findings"]
    assert (finding["first_run"], finding["dir"], finding["saved"]) == (30, None, False)
    (line,) = [x for x in captured.err.splitlines() if "stopped" in x]
    assert "crash first found at run 30" in line and "was not saved" in line, line
    assert line.endswith("(to go on, running its input again: --seed 7 --run-index 30)"), line
    assert "findings so far are saved" not in line
    assert "-> None" not in captured.out and "-> not saved" in captured.out, captured.out


def test_cli_target_cmd_runs_the_unsaved_finding_again(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "crash.sh"
    script.write_text("#!/bin/sh\nexit 134\n")
    script.chmod(0o755)
    out = _out_with_no_room_for_findings(tmp_path)
    code = main(["fuzz", "--format", "itl", "--target-cmd", f"{script} {{}}", "--runs", "10", "--seed", "5",
                 "--run-index", "100", "--no-minimize", "--out", str(out), "-q"])
    captured = capsys.readouterr()
    assert code == 2
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["execs"], summary["next_run_index"]) == (1, 100)
    (finding,) = summary["findings"]
    assert (finding["signature"], finding["saved"]) == ("exit status 134", False)
    (line,) = [x for x in captured.err.splitlines() if "stopped" in x]
    assert "--seed 5 --run-index 100)" in line and "was not saved" in line, line
    assert "-> None" not in captured.out


def test_cli_a_hang_found_at_ctrl_c_whose_folder_cannot_be_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """In process, an input hung past --hang-after when Ctrl-C arrives is a hang finding; its folder not
    written was an OSError out of the loop (no summary.json, the hang lost): now said, exit 130."""
    from phoneemu.fuzz import supervise

    monkeypatch.setattr(supervise, "can_supervise", lambda: False)
    (tmp_path / "tfz_hung_then_ctrl_c.py").write_text(
        "import time\n"
        "def parse(data):\n    c0 = time.thread_time()\n    while time.thread_time() - c0 < 0.2:\n"
        "        pass\n    raise KeyboardInterrupt\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = _out_with_no_room_for_findings(tmp_path)
    code = main(["fuzz", "--format", "itl", "--target", "tfz_hung_then_ctrl_c:parse", "--hang-after", "0.05",
                 "--runs", "5", "--seed", "3", "--out", str(out), "-q"])
    captured = capsys.readouterr()
    assert code == 130
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["error"] is not None
    assert (summary["execs"], summary["next_run_index"], summary["statuses"]) == (1, 0, {"hang": 1})
    (finding,) = summary["findings"]
    assert (finding["kind"], finding["saved"]) == ("hang", False)
    (line,) = [x for x in captured.err.splitlines() if "interrupted after" in x]
    assert "findings so far are saved" not in line and "--seed 3 --run-index 0)" in line, line


def _finding(sig: str, run: int) -> Finding:
    return Finding(signature=sig, kind="crash", first_run=run, count=1, detail="", ops=(), resigned=False,
                   data=b"")


def test_the_stopped_line_says_the_others_are_saved() -> None:
    from phoneemu.commands._fuzz_run import _stopped_line

    saved, lost = _finding("KeyError at p.py:3", 10), _finding("IndexError at p.py:9", 12)
    saved.directory = Path("/fz/crashes/abc")
    report = FuzzReport(fmt="itl", seed=2, execs=3, start_index=10, error="/fz/crashes/def: No space left",
                        findings={saved.signature: saved, lost.signature: lost}, unsaved=[lost.signature])
    line = _stopped_line(argparse.Namespace(seed=2), report)
    assert line == ("/fz/crashes/def: No space left: the run stopped after 3 execs; the crash first found at "
                    "run 12 (IndexError at p.py:9) was not saved, the 1 other finding(s) are (to go on, "
                    "running its input again: --seed 2 --run-index 12)")
