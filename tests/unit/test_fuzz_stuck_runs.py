"""An in-process target stuck in an endless loop (phoneemu.fuzz.runwatch): past ``--time`` the run is
stopped and the input saved as a hang; at Ctrl-C / SIGTERM the input under way that is a hang already is
saved, not lost."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.engine import FuzzConfig, fuzz, input_for
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.runwatch import RunWatch
from phoneemu.fuzz.targets import CommandTarget, PythonTarget

#: CPU seconds after which the "endless" loops below give up (so that the old code ends, failing)
ESCAPE_S = 5.0


#: a module of a parser stuck for ever (ESCAPE_S of CPU at most), for ``--target MODULE:parse``
ENDLESS_PARSER = ("import time\n"
                  "def parse(data):\n"
                  "    c0 = time.thread_time()\n"
                  f"    while time.thread_time() - c0 < {ESCAPE_S}:\n"
                  "        pass\n"
                  "    raise RuntimeError('never stopped')\n")


class NeverStoppedError(Exception):
    """The endless loop was not stopped: it gave up on its own after :data:`ESCAPE_S`."""


def _spin(seconds: float) -> None:
    c0 = time.thread_time()
    while time.thread_time() - c0 < seconds:
        pass


def endless(_data: bytes) -> None:
    """A parser stuck for ever (bounded here by ESCAPE_S of CPU, then a crash of its own)."""
    _spin(ESCAPE_S)
    raise NeverStoppedError


@pytest.fixture(scope="module")
def itl_mutator() -> Mutator:
    return Mutator(build_corpus("itl"), resign_ratio=0.25)


def test_an_endless_loop_past_the_time_limit_is_stopped_and_saved_as_a_hang(tmp_path: Path,
                                                                           itl_mutator: Mutator) -> None:
    """Was: ``--time`` did not bound the run (it ran until the loop ended, for ever); the input is a hang
    finding now, with its run index, and the run ends there, not interrupted."""
    config = FuzzConfig(fmt="itl", seed=3, time_limit=0.2, out=tmp_path, reproduce="phoneemu fuzz ...")
    report = fuzz(config, PythonTarget(endless, name="endless", hang_after=0.05), itl_mutator, start_index=7)
    assert not report.interrupted and report.statuses == {"hang": 1} and report.execs == 1
    (finding,) = report.findings.values()
    assert finding.kind == "hang" and finding.first_run == 7
    assert finding.signature == "hang in endless (> 0.05 s)"
    assert finding.directory is not None
    info = json.loads((finding.directory / "info.json").read_text())
    assert info["kind"] == "hang" and info["run_index"] == 7
    assert "stopped by the --time limit" in info["detail"]
    assert (finding.directory / "input.bin").read_bytes() == input_for(itl_mutator, 3, 7).data


def _hung_then_ctrl_c(_data: bytes) -> None:
    """Spins past hang_after, then Ctrl-C arrives (as a SIGINT's KeyboardInterrupt would, mid-loop)."""
    _spin(0.2)
    raise KeyboardInterrupt


def _quick_then_ctrl_c(_data: bytes) -> None:
    raise KeyboardInterrupt


def test_ctrl_c_in_an_endless_loop_keeps_its_input_as_a_hang(tmp_path: Path, itl_mutator: Mutator) -> None:
    """Was: interrupted, 0 findings: the input that hung the parser (the reason for the Ctrl-C) was lost."""
    config = FuzzConfig(fmt="itl", seed=1, runs=10, out=tmp_path)
    report = fuzz(config, PythonTarget(_hung_then_ctrl_c, name="p", hang_after=0.05), itl_mutator)
    assert report.interrupted and report.statuses == {"hang": 1} and report.execs == 1
    (finding,) = report.findings.values()
    assert finding.kind == "hang" and finding.first_run == 0 and finding.directory is not None
    info = json.loads((finding.directory / "info.json").read_text())
    assert "stopped by Ctrl-C or SIGTERM" in info["detail"]


def test_ctrl_c_in_an_input_that_is_no_hang_yet_drops_it(tmp_path: Path, itl_mutator: Mutator) -> None:
    config = FuzzConfig(fmt="itl", seed=1, runs=10, out=tmp_path)
    report = fuzz(config, PythonTarget(_quick_then_ctrl_c, name="p", hang_after=1.0), itl_mutator)
    assert report.interrupted and report.execs == 0 and not report.findings and not report.statuses
    assert not (tmp_path / "crashes").exists()


def test_a_command_target_is_not_watched(tmp_path: Path) -> None:
    """Its runs are bounded (killed at --timeout): no SIGALRM, no hang made up at Ctrl-C."""
    watch = RunWatch(CommandTarget("true {}", workdir=tmp_path / "w", timeout=1.0))
    watch.cut = (100.0, 100.0)
    assert watch.cut_hang("Ctrl-C") is None and watch.bounds_own_runs
    watch.close()


def test_cli_time_limit_ends_an_endless_loop_with_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """``phoneemu fuzz --time 0.3`` of a parser stuck for ever ends, says the hang and exits 1 (CI). Its input
    is a hang only past the limit (``--hang-after 0.5``): one that is a hang before it is a finding and the
    run goes on (test_fuzz_supervised_endless_loop)."""
    (tmp_path / "endless_parser_g.py").write_text(ENDLESS_PARSER)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "fz"
    rc = main(["fuzz", "--format", "itl", "--target", "endless_parser_g:parse", "--hang-after", "0.5",
               "--time", "0.3", "--out", str(out), "-q"])
    assert rc == 1, capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is False and summary["statuses"] == {"hang": 1}
    (finding,) = summary["findings"]
    assert finding["kind"] == "hang" and finding["first_run"] == 0
    assert "hang in endless_parser_g:parse (> 0.5 s)" in capsys.readouterr().out


def test_cli_replay_of_an_endless_loop_ends_as_the_hang_it_was(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Was: info.json's reproduce command of such a hang ran for ever; it is stopped once a hang, exit 1."""
    (tmp_path / "endless_parser_r.py").write_text(ENDLESS_PARSER)
    (tmp_path / "input.bin").write_bytes(b"\x01\x01\x00\x01\x02")
    monkeypatch.chdir(tmp_path)
    rc = main(["fuzz", "--format", "itl", "--target", "endless_parser_r:parse", "--hang-after", "0.05",
               "--replay", "input.bin"])
    out = capsys.readouterr().out
    assert rc == 1 and "input.bin: hang — hang in endless_parser_r:parse (> 0.05 s)" in out, out
