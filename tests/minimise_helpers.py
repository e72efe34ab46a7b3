"""Stand-ins shared by the in-process fuzz tests of minimising (phoneemu.fuzz.minimize_plan): a mutator that
makes one input every time, a fake clock that only the target's runs move on, a watched target whose
hangs return at once, the check that the run's SIGALRM watch was given back, and a finding's info.json."""

from __future__ import annotations

import contextlib
import json
import random
import signal
from typing import cast

from phoneemu.fuzz.engine import FuzzReport
from phoneemu.fuzz.mutators import Mutant, Mutator
from phoneemu.fuzz.targets import Outcome


# --------------------------------------------------------------------------- the fuzz loop's inputs and clock
class _Always:
    """A mutator that makes ``data`` every time (``Mutator``'s ``mutate``)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def mutate(self, _rng: random.Random) -> Mutant:
        return Mutant(data=self.data, seed_index=0, ops=("toy",), resigned=False)


def always(data: bytes) -> Mutator:
    """A mutator that makes ``data`` every time: each input of the fuzz loop is ``data``."""
    return cast(Mutator, _Always(data))


class FakeClock:
    """The run's clock: it moves on only when the target runs (``cost`` fake seconds a run, :meth:`tick`)."""

    def __init__(self, cost: float) -> None:
        self.now = 0.0
        self.cost = cost
        self.runs = 0

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        """One run of the target: ``cost`` seconds on, counted in ``runs``."""
        self.now += self.cost
        self.runs += 1


# --------------------------------------------------------------------------- a target whose hangs are quick
class QuickHangs:
    """A watched in-process target (it has the hang rule: more than 0.5 s of CPU) whose every input holding
    ``LOOP`` is a hang ``hang in quick (> 0.5 s)``, returned at once; the rest is handled. Each run calls
    :meth:`before_run` first (a subclass's clock or Ctrl-C)."""

    bounds_own_runs = False

    def before_run(self) -> None:
        """What a run does before its input is looked at: nothing here."""

    def run(self, data: bytes) -> Outcome:
        self.before_run()
        if b"LOOP" in data:
            return self.hang_outcome(1.0, 1.0, "ended")
        return Outcome(status="handled")

    @staticmethod
    def is_hang(_elapsed: float, cpu: float) -> bool:
        return cpu > 0.5

    @staticmethod
    def hang_outcome(elapsed: float, _cpu: float, how: str) -> Outcome:
        return Outcome(status="hang", signature="hang in quick (> 0.5 s)", detail=how, elapsed=elapsed)

    def session(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def close(self) -> None:
        return None


# --------------------------------------------------------------------------- after the run
def assert_alarm_given_back() -> None:
    """The run gave SIGALRM back: the default handler again, no interval timer left running."""
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0


def finding_info(report: FuzzReport) -> dict[str, object]:
    """The info.json of the run's one finding (which was saved to a folder)."""
    (finding,) = report.findings.values()
    assert finding.directory is not None
    info: dict[str, object] = json.loads((finding.directory / "info.json").read_text())
    return info
