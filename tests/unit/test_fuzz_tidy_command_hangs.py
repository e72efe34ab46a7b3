"""A command's (``--target-cmd``) hang is minimised with the hang budget, as an in-process one is
(phoneemu.fuzz.minimize_plan ``minimize_plan``; was: the crash budget, 5,000 attempts within 20 s, each
hanging attempt costing ``--timeout``); and a command's attempt still running when minimising ends is
killed then (phoneemu.fuzz.targets ``CommandTarget.runs_ending_within``; was: let run up to its
``--timeout``, past ``--time``). Each toy command logs its input's size, one line a run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import cast

import pytest

from phoneemu.fuzz.engine import FuzzConfig, fuzz, same_finding
from phoneemu.fuzz.runwatch import AttemptStopped, RunWatch
from phoneemu.fuzz.targets import CommandTarget, Outcome
from tests.minimise_helpers import FakeClock, always, finding_info

#: a hanging input: the toy command hangs on every input holding LOOP (a long way to go around it)
HANGING = bytes(range(32, 127)) + b"LOOP" + bytes(range(32, 127))
#: a crashing input: the toy command crashes on every non-empty input, and hangs on the empty one
CRASHING = b"BOOM" + bytes(range(256))
#: the toy command's own time-out, seconds: long, so that a run let finish shows (never waited out when
#: the rule holds: each attempt under test is killed at the minimiser's end, well before it)
LONG_TIMEOUT = 5.0


def _command(tmp_path: Path, body: str) -> tuple[str, Path]:
    """A shell script logging its input's size to ``runs.log`` and then doing ``body``; its command line."""
    log = tmp_path / "runs.log"
    script = tmp_path / "toy.sh"
    script.write_text(f'#!/bin/sh\nwc -c < "$1" >> {log}\n{body}\n')
    script.chmod(0o755)
    return f"{script} {{}}", log


def _hangs_on_loop(tmp_path: Path) -> tuple[str, Path]:
    return _command(tmp_path, 'grep -q LOOP "$1" && exec sleep 30\nexit 0')


def _crashes_hangs_on_empty(tmp_path: Path) -> tuple[str, Path]:
    return _command(tmp_path, '[ -s "$1" ] || exec sleep 30\nexit 134')


def _sizes(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()]


# --------------------------------------------------------------------------- the hang budget


def test_a_commands_hang_is_minimised_within_the_hang_attempts(tmp_path: Path) -> None:
    """Was: the crash budget's 5,000 attempts (here: every attempt the minimiser wanted)."""
    command, log = _hangs_on_loop(tmp_path)
    target = CommandTarget(command, workdir=tmp_path / "w", timeout=0.2)
    config = FuzzConfig(fmt="sgn", runs=1, out=tmp_path / "fz", hang_minimize_attempts=6)
    report = fuzz(config, target, always(HANGING))
    target.close()
    assert report.statuses == {"hang": 1}
    assert len(_sizes(log)) == 1 + 6  # the input, then 6 attempts
    (finding,) = report.findings.values()
    assert finding.signature == "timeout (> 0.2 s)"
    assert finding.minimized is not None and b"LOOP" in finding.minimized
    assert len(finding.minimized) < len(HANGING)


class _TimedCommand(CommandTarget):
    """A command target whose every run costs a fake second of ``clock``."""

    def __init__(self, command: str, clock: FakeClock, *, workdir: Path) -> None:
        super().__init__(command, workdir=workdir, timeout=0.2)
        self.clock = clock

    def run(self, data: bytes) -> Outcome:
        self.clock.tick()
        return super().run(data)


def test_a_commands_hang_is_minimised_within_the_hang_time_limit(tmp_path: Path) -> None:
    """Each attempt costs a (fake) second: the 10 s of a hang, not the 20 s of a crash."""
    command, log = _hangs_on_loop(tmp_path)
    clock = FakeClock(1.0)
    target = _TimedCommand(command, clock, workdir=tmp_path / "w")
    config = FuzzConfig(fmt="sgn", runs=1, out=tmp_path / "fz", hang_minimize_time=10.0)
    report = fuzz(config, target, always(HANGING), clock=clock)
    target.close()
    attempts = len(_sizes(log)) - 1
    assert 9 <= attempts <= 11  # stopped at the hang's time limit (was: 20)
    assert finding_info(report)["minimize_note"] is None  # its full budget


def test_the_help_says_a_commands_hang_has_the_hang_budget(capsys: pytest.CaptureFixture[str]) -> None:
    from phoneemu.cli import main

    with pytest.raises(SystemExit):
        main(["fuzz", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "A hang is minimised with up to 500 attempts within 10 s" in text
    assert "or a command's --timeout" in text


# --------------------------------------------------------------------------- an attempt ends with minimising


def test_a_commands_attempt_does_not_run_past_the_time_limit(tmp_path: Path) -> None:
    """A crash found just before ``--time`` is minimised within what is left: the attempt under way at the
    end (the empty input, which hangs) is killed then (was: let run to its --timeout, 5 s past --time)."""
    command, log = _crashes_hangs_on_empty(tmp_path)
    target = CommandTarget(command, workdir=tmp_path / "w", timeout=LONG_TIMEOUT)
    config = FuzzConfig(fmt="sgn", time_limit=0.5, out=tmp_path / "fz")
    t0 = time.monotonic()
    report = fuzz(config, target, always(CRASHING))
    elapsed = time.monotonic() - t0
    target.close()
    assert elapsed < LONG_TIMEOUT  # the old code waited the empty attempt out: >= LONG_TIMEOUT
    assert report.statuses["crash"] >= 1 and not report.interrupted
    assert 0 in _sizes(log)  # the empty input was tried, and stopped
    (finding,) = report.findings.values()
    assert finding.signature == "exit status 134" and finding.minimized == CRASHING  # not the same crash
    note = cast(str, finding_info(report)["minimize_note"])
    assert note.startswith("minimised within the ") and note.endswith(
        "s left of --time (0.5 s), not the 20 s of a minimisation"), note


def test_with_runs_alone_a_commands_attempt_ends_with_the_minimisers_time(tmp_path: Path) -> None:
    """The minimiser's own time bounds a command's attempt too, as an in-process one's (was: one
    ``--timeout`` more)."""
    command, log = _crashes_hangs_on_empty(tmp_path)
    target = CommandTarget(command, workdir=tmp_path / "w", timeout=LONG_TIMEOUT)
    config = FuzzConfig(fmt="sgn", runs=1, out=tmp_path / "fz", minimize_time=0.3)
    t0 = time.monotonic()
    report = fuzz(config, target, always(CRASHING))
    elapsed = time.monotonic() - t0
    target.close()
    assert elapsed < LONG_TIMEOUT
    assert _sizes(log) == [len(CRASHING), 0]  # the input, then the empty attempt, stopped at 0.3 s
    assert report.statuses == {"crash": 1}


def test_a_run_past_the_end_is_stopped_not_a_hang(tmp_path: Path) -> None:
    """Killed at the end of ``runs_ending_within``: AttemptStopped, so never the same hang; outside it, the
    same input is the command's hang (its --timeout), and a run that ends in time is as it was."""
    command, _log = _hangs_on_loop(tmp_path)
    target = CommandTarget(command, workdir=tmp_path / "w", timeout=0.3)
    hang = target.run(b"LOOP")
    assert (hang.status, hang.signature) == ("hang", "timeout (> 0.3 s)")
    with target.runs_ending_within(0.1), pytest.raises(AttemptStopped):
        target.run(b"LOOP")
    with target.runs_ending_within(0.1):
        assert not same_finding(RunWatch(target), hang)(b"LOOP")
    with target.runs_ending_within(10.0):
        assert target.run(b"quick").status == "ok"
        assert same_finding(RunWatch(target), hang)(b"LOOP")  # its own timeout first: the same hang
    assert same_finding(RunWatch(target), hang)(b"LOOP")  # the block ended: its own timeout again
    target.close()
