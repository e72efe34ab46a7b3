"""An in-process hang is minimised too (phoneemu.fuzz.minimize_plan ``minimize_plan``; was: saved as found,
while a crash was minimised): each attempt that hangs is stopped once it is a hang (SIGALRM, main thread) and
is the same hang; its budget is its own (``hang_minimize_attempts`` within ``hang_minimize_time``: every
attempt that counts costs the hang time-out); where attempts cannot be stopped (not the main thread) it is
saved as found and ``minimize_note`` says why."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from phoneemu.errors import DecodeError
from phoneemu.fuzz.engine import FuzzConfig, FuzzReport, fuzz, regenerate
from phoneemu.fuzz.minimize import HANG_TIME_LIMIT
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.targets import PythonTarget
from tests.minimise_helpers import FakeClock, QuickHangs, always, assert_alarm_given_back, finding_info

#: CPU seconds after which an "endless" loop gives up on its own (so that a broken watch ends, failing)
ESCAPE_S = 3.0
#: CPU seconds a slow parser takes on a hanging input: a hang by the rule (0.05 s) that ends
SLOW_S = 0.3
#: the hanging input: the toy parsers loop on every input that holds LOOP
HANGING = b"abcdefgh" + b"LOOP" + b"ijklmnop"

entered: list[int] = []  # the lengths of the looping calls begun
ended: list[int] = []  # ... and of those never stopped (they gave up on their own)


def _loop_on_loop(data: bytes, seconds: float) -> None:
    """Loops ``seconds`` of CPU on an input holding ``LOOP``; rejects the rest."""
    if b"LOOP" not in data:
        raise DecodeError("rejected", fmt="toy", offset=0)
    entered.append(len(data))
    c0 = time.thread_time()
    while time.thread_time() - c0 < seconds:
        pass
    ended.append(len(data))


def endless_parser(data: bytes) -> None:
    """Loops for ever (bounded by ESCAPE_S of CPU) on an input holding ``LOOP``."""
    _loop_on_loop(data, ESCAPE_S)


def slow_parser(data: bytes) -> None:
    """Loops SLOW_S of CPU on an input holding ``LOOP``: the fuzz loop measures it as a hang (with
    ``--runs`` alone nothing stops a call of the loop itself: phoneemu.fuzz.runwatch)."""
    _loop_on_loop(data, SLOW_S)


def _mutator(data: bytes = HANGING) -> Mutator:
    return always(data)


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    entered.clear()
    ended.clear()
    yield
    assert_alarm_given_back()


def test_a_hang_is_minimised_to_what_makes_it(tmp_path: Path) -> None:
    """Was: ``minimized.bin`` was the whole input, ``minimized_size`` 20."""
    config = FuzzConfig(fmt="sgn", runs=1, out=tmp_path)
    report = fuzz(config, PythonTarget(slow_parser, name="toy", hang_after=0.05), _mutator())
    assert report.statuses == {"hang": 1} and not report.interrupted
    (finding,) = report.findings.values()
    assert finding.kind == "hang" and finding.signature == "hang in toy (> 0.05 s)"
    assert finding.minimized == b"LOOP"
    assert len(entered) > 2 and ended == [len(HANGING)]  # each hanging attempt was stopped once a hang
    info = finding_info(report)
    assert (info["minimized_size"], info["input_size"], info["minimize_note"]) == (4, len(HANGING), None)
    assert finding.directory is not None and (finding.directory / "minimized.bin").read_bytes() == b"LOOP"


def test_regenerate_minimises_an_endless_loop(tmp_path: Path) -> None:
    config = FuzzConfig(fmt="sgn", runs=1)
    target = PythonTarget(endless_parser, name="toy", hang_after=0.05)
    outcome, finding = regenerate(config, target, _mutator(), index=0, into=tmp_path / "regen")
    assert outcome.status == "hang" and finding is not None and finding.minimized == b"LOOP"
    assert (tmp_path / "regen" / "minimized.bin").read_bytes() == b"LOOP"
    assert len(entered) > 2 and not ended  # each endless call was stopped


class _QuickHangs(QuickHangs):
    """An in-process target (watched: it has the hang rule) whose every input holding ``LOOP`` is a hang,
    returned at once; each run costs a fake second of its clock (the hang time-out an attempt costs)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def before_run(self) -> None:
        self.clock.tick()


#: a long way to go: thousands of bytes around LOOP
LONG_HANGING = bytes(range(256)) * 8 + b"LOOP" + bytes(range(256)) * 8


def test_a_hang_is_minimised_within_the_hang_time_limit(tmp_path: Path) -> None:
    """Each attempt costs a (fake) second: the 10 s of a hang, not the 20 s of a crash."""
    clock = FakeClock(cost=1.0)
    report = fuzz(FuzzConfig(fmt="sgn", runs=1, out=tmp_path), _QuickHangs(clock), _mutator(LONG_HANGING),
                  clock=clock)
    (finding,) = report.findings.values()
    attempts = clock.runs - 1
    assert HANG_TIME_LIMIT - 1 <= attempts <= HANG_TIME_LIMIT + 1  # stopped at the hang's time limit
    assert finding.minimized is not None and b"LOOP" in finding.minimized
    assert len(finding.minimized) < len(LONG_HANGING)
    assert finding_info(report)["minimize_note"] is None  # its full budget


def test_a_hang_is_minimised_within_the_hang_attempts(tmp_path: Path) -> None:
    clock = FakeClock(cost=0.001)
    config = FuzzConfig(fmt="sgn", runs=1, out=tmp_path, hang_minimize_attempts=7)
    report = fuzz(config, _QuickHangs(clock), _mutator(LONG_HANGING), clock=clock)
    (finding,) = report.findings.values()
    assert clock.runs == 1 + 7
    assert finding.minimized is not None and len(finding.minimized) < len(LONG_HANGING)


def test_a_hang_is_minimised_within_what_is_left_of_the_time_limit(tmp_path: Path) -> None:
    clock = FakeClock(cost=1.0)
    config = FuzzConfig(fmt="sgn", time_limit=5.0, out=tmp_path)
    report = fuzz(config, _QuickHangs(clock), _mutator(LONG_HANGING), clock=clock)
    assert report.execs == 1 and clock.now <= 5.0 + clock.cost
    note = cast(str, finding_info(report)["minimize_note"])
    assert note == "minimised within the 4.00 s left of --time (5 s), not the 10 s of a minimisation", note


def test_a_crashs_budget_is_unchanged(tmp_path: Path) -> None:
    """The hang budget is a hang's only: a crash gets the minimiser's 20 s."""
    clock = FakeClock(cost=1.0)

    def crash(data: bytes) -> None:
        clock.tick()
        if b"LOOP" in data:
            raise IndexError("toy crash")
        raise DecodeError("rejected", fmt="toy", offset=0)

    fuzz(FuzzConfig(fmt="sgn", runs=1, out=tmp_path), PythonTarget(crash, hang_after=30.0),
         _mutator(LONG_HANGING), clock=clock)
    assert 19 <= clock.runs - 1 <= 21


def test_where_attempts_cannot_be_stopped_a_hang_is_saved_as_found_and_says_why(tmp_path: Path) -> None:
    """Outside the main thread no SIGALRM stops an attempt that loops for ever: not minimised (an attempt
    could hang the run), and info.json says so (was: ``null``, no reason)."""
    clock = FakeClock(cost=0.001)
    reports: list[FuzzReport] = []
    worker = threading.Thread(target=lambda: reports.append(
        fuzz(FuzzConfig(fmt="sgn", runs=1, out=tmp_path), _QuickHangs(clock), _mutator(), clock=clock)))
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive() and len(reports) == 1
    assert clock.runs == 1  # no attempt
    (finding,) = reports[0].findings.values()
    assert finding.minimized is None
    note = cast(str, finding_info(reports[0])["minimize_note"])
    assert note.startswith("not minimised: an in-process hang is minimised only where an attempt is "
                           "stopped once it hangs"), note
