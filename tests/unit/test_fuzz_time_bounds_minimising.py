"""``--time`` bounds minimising too (phoneemu.fuzz.minimize_plan ``minimize_budget``): a crash found with less
than the minimiser's 20 s left of ``--time`` is minimised within what is left, one found with none left is
saved un-minimised, its info.json saying so (was: minimised for up to 20 s more, past ``--time``). Timed
by a fake clock that each run of the target moves on: no wall-clock asserts."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from phoneemu.errors import DecodeError
from phoneemu.fuzz.engine import FuzzConfig, FuzzReport, fuzz
from phoneemu.fuzz.targets import PythonTarget
from tests.minimise_helpers import FakeClock, always, finding_info

#: the crashing input: the toy parser crashes on every input that starts with BOOM, so the minimiser has
#: a long way to go (thousands of bytes to cut)
CRASHING = b"BOOM" + bytes(range(256)) * 16
TIME_LIMIT = 10.0  #: fake seconds


class ParserClock(FakeClock):
    """The run's clock, moved on only by the runs of its toy :meth:`parser` (``cost`` fake seconds a run)."""

    def parser(self, data: bytes) -> None:
        """Crashes (IndexError) on ``BOOM...``, rejects the rest; each call costs ``cost``."""
        self.tick()
        if data.startswith(b"BOOM"):
            raise IndexError("toy crash")
        raise DecodeError("rejected", fmt="toy", offset=0)


def _run(tmp_path: Path, clock: ParserClock, *, runs: int | None = None,
         time_limit: float | None = None) -> tuple[FuzzReport, dict[str, object]]:
    target = PythonTarget(clock.parser, name="toy", hang_after=30.0)
    config = FuzzConfig(fmt="sgn", out=tmp_path, runs=runs, time_limit=time_limit)
    report = fuzz(config, target, always(CRASHING), clock=clock)
    return report, finding_info(report)


def test_a_crash_found_before_the_time_limit_is_minimised_within_what_is_left(tmp_path: Path) -> None:
    clock = ParserClock(cost=1.0)
    report, info = _run(tmp_path, clock, time_limit=TIME_LIMIT)
    # found at 1 s, minimised within the 9 s left: the run ends at --time (was: 20 s of minimising more)
    assert clock.now <= TIME_LIMIT + clock.cost
    assert report.execs == 1 and not report.interrupted
    assert 0 < cast(int, info["minimized_size"]) < len(CRASHING)  # minimised all the same, as far as it got
    note = cast(str, info["minimize_note"])
    assert note.startswith("minimised within the 9.00 s left of --time (10 s)"), note


def test_a_crash_found_with_no_time_left_is_saved_unminimised_and_says_so(tmp_path: Path) -> None:
    clock = ParserClock(cost=TIME_LIMIT + 1)  # the first run ends past --time
    report, info = _run(tmp_path, clock, time_limit=TIME_LIMIT)
    assert clock.runs == 1  # no minimising attempt
    assert report.execs == 1 and report.statuses == {"crash": 1}
    assert info["minimized_size"] == info["input_size"] == len(CRASHING)
    assert info["minimize_note"] == "not minimised: found with no time left of --time (10 s)"
    (finding,) = report.findings.values()
    assert finding.directory is not None and finding.minimized is None
    assert (finding.directory / "minimized.bin").read_bytes() == CRASHING


def test_with_runs_alone_or_time_to_spare_minimising_keeps_its_own_budget(tmp_path: Path) -> None:
    for name, time_limit in (("runs", None), ("spare", 1000.0)):
        clock = ParserClock(cost=0.001)
        _, info = _run(tmp_path / name, clock, runs=1, time_limit=time_limit)
        assert info["minimize_note"] is None
        assert info["minimized_size"] == 4  # BOOM: all the way
