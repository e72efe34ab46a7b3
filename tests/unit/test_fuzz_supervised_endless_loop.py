"""A ``--target MODULE:FUNCTION`` stuck in an endless loop, with ``--runs`` alone (phoneemu.fuzz.supervise):
the input is a hang finding as soon as it is a hang by the rule, its child killed, and the run goes on.

Was: in a batch only ``--time`` or Ctrl-C stopped the input under way, so ``--runs 2000`` of a parser that
loops for ever never ended (the progress line repeating ``0 hang(s)`` at a falling rate; the hang found only
when the user gave up and pressed Ctrl-C)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.fuzz.engine import FuzzConfig, fuzz, input_for
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.supervise import SupervisedTarget, can_supervise
from phoneemu.fuzz.targets import PythonTarget
from tests.unit import test_fuzz_stuck_runs as stuck
from tests.unit.test_fuzz_stuck_runs import (  # the stuck parser (ESCAPE_S of CPU at most)
    ENDLESS_PARSER,
    endless,
)

pytestmark = pytest.mark.skipif(not can_supervise(), reason="needs fork (a supervised child)")

#: the targets' hang_after: the child's CPU past it is a hang (10 x of wall time too, on a loaded machine)
HANG_AFTER = 0.2


itl_mutator = stuck.itl_mutator  # the module's ITL mutator fixture, theirs


def test_an_endless_loop_with_runs_alone_is_a_hang_finding_and_the_run_goes_on(tmp_path: Path,
                                                                              itl_mutator: Mutator) -> None:
    config = FuzzConfig(fmt="itl", seed=5, runs=2, out=tmp_path, minimize=False,
                        reproduce="phoneemu fuzz ...")
    target = SupervisedTarget(PythonTarget(endless, name="endless", hang_after=HANG_AFTER))
    try:
        report = fuzz(config, target, itl_mutator, start_index=11)
    finally:
        target.close()
    assert not report.interrupted and report.error is None
    assert report.statuses == {"hang": 2} and report.execs == 2, report.statuses  # both run: a new child
    (finding,) = report.findings.values()
    assert finding.kind == "hang" and finding.first_run == 11 and finding.count == 2
    assert finding.signature == f"hang in endless (> {HANG_AFTER:g} s)"
    assert finding.directory is not None
    info = json.loads((finding.directory / "info.json").read_text())
    assert info["run_index"] == 11 and "its process killed once it was a hang" in info["detail"]
    assert (finding.directory / "input.bin").read_bytes() == input_for(itl_mutator, 5, 11).data


def test_cli_runs_alone_of_an_endless_loop_ends_with_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """``phoneemu fuzz --runs 1`` of a parser stuck for ever ends (minimising included), says the hang and
    exits 1, as README's ``--hang-after`` promises."""
    (tmp_path / "endless_parser_n.py").write_text(ENDLESS_PARSER)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "fz"
    rc = main(["fuzz", "--format", "itl", "--target", "endless_parser_n:parse",
               "--hang-after", str(HANG_AFTER), "--runs", "1", "--out", str(out), "-q"])
    said = capsys.readouterr().out
    assert rc == 1, said
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is False and summary["statuses"] == {"hang": 1}
    (finding,) = summary["findings"]
    assert finding["kind"] == "hang" and finding["first_run"] == 0
    assert f"hang in endless_parser_n:parse (> {HANG_AFTER:g} s)" in said
