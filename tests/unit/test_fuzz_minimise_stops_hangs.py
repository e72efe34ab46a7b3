"""The minimiser's time budget is a real bound (phoneemu.fuzz.runwatch ``stopping_hangs``): an in-process
attempt that loops for ever is stopped once it is a hang, counts as "not the same crash", and minimising goes
on — with ``--runs`` alone (was: the run hung), under a long ``--time`` (was: held until ``--time``, then the
run ended) and in ``regenerate`` (was: the unwatched target hung). And ``RunWatch.stop_at`` interrupted while
it takes SIGALRM leaves no handler and no timer behind."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.errors import DecodeError
from phoneemu.fuzz.engine import FuzzConfig, fuzz, regenerate, same_finding
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.runwatch import RunWatch
from phoneemu.fuzz.targets import PythonTarget
from tests.minimise_helpers import always, assert_alarm_given_back

#: CPU seconds after which an "endless" attempt gives up on its own (so that the old code ends, failing)
ESCAPE_S = 3.0
#: the crashing input: the toy parser crashes on it, and on its shrunk forms of 24 bytes or more
CRASHING = b"BOOM" + bytes(range(1, 61))

entered: list[int] = []  # the lengths of the endless attempts begun
escaped: list[int] = []  # ... and of those never stopped (they gave up after ESCAPE_S)


class NeverStoppedError(Exception):
    """An endless attempt was not stopped: it gave up on its own after :data:`ESCAPE_S`."""


def _endless(data: bytes) -> None:
    entered.append(len(data))
    c0 = time.thread_time()
    while time.thread_time() - c0 < ESCAPE_S:
        pass
    escaped.append(len(data))
    raise NeverStoppedError


def toy_parser(data: bytes) -> None:
    """Crashes (IndexError) on ``BOOM`` and 24 bytes or more; loops for ever on ``BOOM`` and 16 bytes
    exactly (a shrunk candidate the minimiser meets); rejects the rest."""
    if data.startswith(b"BOOM") and len(data) == 16:
        _endless(data)
    if data.startswith(b"BOOM") and len(data) >= 24:
        raise IndexError("toy crash")
    raise DecodeError("rejected", fmt="toy", offset=0)


def _mutator() -> Mutator:
    return always(CRASHING)


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    entered.clear()
    escaped.clear()
    yield
    assert_alarm_given_back()


def _target() -> PythonTarget:
    return PythonTarget(toy_parser, name="toy", hang_after=0.05)


def _check_minimised(minimized: bytes | None) -> None:
    assert entered and not escaped  # an endless attempt was met, and stopped
    assert minimized is not None and minimized.startswith(b"BOOM") and 24 <= len(minimized) < len(CRASHING)


def test_minimising_with_runs_only_stops_an_attempt_that_loops_for_ever(tmp_path: Path) -> None:
    config = FuzzConfig(fmt="sgn", runs=1, out=tmp_path, minimize_time=2.0)
    report = fuzz(config, _target(), _mutator())
    assert not report.interrupted and report.execs == 1 and report.statuses == {"crash": 1}
    (finding,) = report.findings.values()
    assert finding.kind == "crash" and finding.signature.startswith("IndexError at ")
    _check_minimised(finding.minimized)
    assert finding.directory is not None
    assert (finding.directory / "minimized.bin").read_bytes() == finding.minimized


def test_minimising_under_a_long_time_limit_goes_on_and_so_does_the_run(tmp_path: Path) -> None:
    """Was: the endless attempt ran until ``--time`` (a RunOverrun) and ended the run there."""
    config = FuzzConfig(fmt="sgn", runs=2, time_limit=60.0, out=tmp_path, minimize_time=2.0)
    report = fuzz(config, _target(), _mutator())
    assert not report.interrupted and report.execs == 2 and report.statuses == {"crash": 2}
    (finding,) = report.findings.values()
    assert finding.count == 2
    _check_minimised(finding.minimized)


def test_regenerate_stops_an_attempt_that_loops_for_ever(tmp_path: Path) -> None:
    config = FuzzConfig(fmt="sgn", runs=1, minimize_time=2.0)
    outcome, finding = regenerate(config, _target(), _mutator(), index=0, into=tmp_path / "regen")
    assert outcome.status == "crash" and finding is not None
    _check_minimised(finding.minimized)
    assert (tmp_path / "regen" / "minimized.bin").read_bytes() == finding.minimized


def _spin_for_ever(data: bytes) -> None:
    _endless(data)


def test_a_stopped_attempt_is_the_same_hang_for_a_hang_finding_only() -> None:
    target = PythonTarget(_spin_for_ever, name="spin", hang_after=0.05)
    hang = target.hang_outcome(1.0, 1.0, "found")
    crash = PythonTarget(toy_parser, name="spin").run(CRASHING)
    watch = RunWatch(target)
    with watch.stopping_hangs(30.0) as watched:
        assert watched
        assert same_finding(watch, hang)(b"x")
        assert not same_finding(watch, crash)(b"x")
    assert len(entered) == 2 and not escaped


def test_an_attempt_stopped_by_the_minimisers_time_is_no_hang() -> None:
    """Stopped for the budget, before it was a hang by the target's rule: not the same hang either."""
    target = PythonTarget(_spin_for_ever, name="spin", hang_after=20.0)
    watch = RunWatch(target)
    with watch.stopping_hangs(0.2):
        assert not same_finding(watch, target.hang_outcome(30.0, 30.0, "found"))(b"x")
    assert entered and not escaped


def test_the_time_limit_left_is_given_back_after_minimising() -> None:
    watch = RunWatch(PythonTarget(toy_parser, name="toy", hang_after=0.05))
    with watch.stop_at(30.0):
        with watch.stopping_hangs(5.0):
            assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 0.1  # re-armed: looks every 0.1 s
        left, every = signal.getitimer(signal.ITIMER_REAL)
        assert 20.0 < left <= 30.0 and every == pytest.approx(0.1)


def test_a_command_target_is_not_stopped_while_minimising(tmp_path: Path) -> None:
    from phoneemu.fuzz.targets import CommandTarget

    watch = RunWatch(CommandTarget("true {}", workdir=tmp_path / "w", timeout=1.0))
    with watch.stopping_hangs(5.0) as watched:
        assert not watched and signal.getsignal(signal.SIGALRM) is signal.SIG_DFL
    watch.close()


# --- stop_at interrupted while it takes SIGALRM


class _CtrlCAt:
    """``signal.setitimer`` that raises KeyboardInterrupt at an arming call, before or after arming."""

    def __init__(self, *, after: bool) -> None:
        self.real = signal.setitimer
        self.after = after

    def __call__(self, which: int, seconds: float, interval: float = 0.0) -> tuple[float, float]:
        if seconds <= 0:
            return self.real(which, seconds, interval)
        if not self.after:
            raise KeyboardInterrupt  # between setting the handler and arming the timer
        self.real(which, seconds, interval)
        raise KeyboardInterrupt  # just after arming, before the block


@pytest.mark.parametrize("after", [False, True], ids=["before-arming", "after-arming"])
@pytest.mark.parametrize("mode", ["stop_at", "stopping_hangs"])
def test_an_interrupt_while_sigalrm_is_taken_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch,
                                                                   after: bool, mode: str) -> None:
    """Was (stop_at): the handler set, and the timer running, after a Ctrl-C before the ``try``."""
    watch = RunWatch(PythonTarget(toy_parser, name="toy", hang_after=1.0))
    real = signal.setitimer
    monkeypatch.setattr(signal, "setitimer", _CtrlCAt(after=after))
    try:
        taking = watch.stop_at(5.0) if mode == "stop_at" else watch.stopping_hangs(5.0)
        with pytest.raises(KeyboardInterrupt), taking:
            pytest.fail("the block must not be entered")
        left = signal.getitimer(signal.ITIMER_REAL)[0]
        handler = signal.getsignal(signal.SIGALRM)
    finally:
        real(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
    assert left == 0 and handler is signal.SIG_DFL
