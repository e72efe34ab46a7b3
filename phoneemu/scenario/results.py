"""Verdicts of a scenario run (design §3.10, tlsfuzzer-style expectations).

Per expectation and per phone: PASS when the check holds, FAIL when it does not. A phone *matches*
an expectation when every check holds for it; the expectation passes when all the phones it names
match, or, with ``holds_for`` (:class:`~phoneemu.scenario.model.HoldsFor`), when the number that match
meets its bound (``17 of 20 phones matched (needed at least 18)``). An
expectation marked ``xfail`` turns FAIL into XFAIL (expected failure) and PASS into XPASS
(an expected failure that unexpectedly passed — the mark is stale). A run fails (non-zero
exit) on any FAIL or XPASS, or on an ERROR (the scenario could not be run).
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from phoneemu.words import counted

if TYPE_CHECKING:
    from phoneemu.scenario.capturing import CaptureStop
    from phoneemu.scenario.model import HoldsFor

__all__ = ["CheckResult", "ExpectationResult", "Outcome", "RunSummary", "ScenarioResult", "combine"]


class Outcome(enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    XFAIL = "XFAIL"
    XPASS = "XPASS"
    ERROR = "ERROR"

    @property
    def bad(self) -> bool:
        return self in (Outcome.FAIL, Outcome.XPASS, Outcome.ERROR)


def apply_xfail(held: bool, xfail: str | None) -> Outcome:
    if xfail is None:
        return Outcome.PASS if held else Outcome.FAIL
    return Outcome.XPASS if held else Outcome.XFAIL


def combine(outcomes: list[Outcome]) -> Outcome:
    """Worst-first: ERROR > FAIL > XPASS > XFAIL > PASS."""
    for o in (Outcome.ERROR, Outcome.FAIL, Outcome.XPASS, Outcome.XFAIL):
        if o in outcomes:
            return o
    return Outcome.PASS


@dataclass(kw_only=True)
class CheckResult:
    """One check on one phone: expected vs actual."""

    phone: str
    check: str
    expected: Any
    actual: Any
    held: bool


@dataclass(kw_only=True)
class ExpectationResult:
    where: str
    label: str
    xfail: str | None
    checks: list[CheckResult] = field(default_factory=list)
    timelines: dict[str, list[str]] = field(default_factory=dict)
    #: Per phone a failure explains (:meth:`shown_checks`): the decision that decided its last boot, one line
    #: (``G.3.4-tvs-unknown-signer (rejected) ITLSEP....tlv: TVS does not know the signer``).
    deciding: dict[str, str] = field(default_factory=dict)
    #: Per phone a failure explains: the decision about what each check shown reads, by item
    #: (``checks.SUBJECTS``: ``{"itl": "G.3-unchanged (accepted) ITLSEP....tlv: ITL unchanged"}``), in the
    #: order of the checks; None when the last boot (or step) made none about it.
    decisions: dict[str, dict[str, str | None]] = field(default_factory=dict)
    #: Seconds from the previous expectation evaluated (or the scenario's start, set-up included) to this
    #: one evaluated: the steps it checks (its JUnit testcase's ``time``).
    duration_s: float = 0.0
    #: how many of the phones named must match (every check held); None: all of them (``holds_for``)
    holds_for: HoldsFor | None = None

    @property
    def outcome(self) -> Outcome:
        return apply_xfail(self.bound_met(), self.xfail)

    def bound_met(self) -> bool:
        """Whether as many phones matched as the expectation needs — all of them, or ``holds_for``'s bound —
        before ``xfail`` turns it round: only then is there no failure to explain."""
        if self.holds_for is None:
            return all(c.held for c in self.checks)
        return self.holds_for.admits(len(self.matched_phones()))

    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.held]

    def named_phones(self) -> list[str]:
        """The phones evaluated, in order, each once."""
        return list(dict.fromkeys(c.phone for c in self.checks))

    def matched_phones(self) -> list[str]:
        """The phones every check held for, in order."""
        failed = {c.phone for c in self.checks if not c.held}
        return [p for p in self.named_phones() if p not in failed]

    def needed(self) -> tuple[int, int | None]:
        """The fewest and most phones that must match: all of them (the default), else ``holds_for``'s."""
        if self.holds_for is None:
            named = len(self.named_phones())
            return named, named
        return self.holds_for.at_least, self.holds_for.at_most

    def too_many_matched(self) -> bool:
        """More phones matched than ``holds_for`` allows (``none``, ``at_most``): the phones that matched
        are the ones to explain, not those that did not."""
        most = self.holds_for.at_most if self.holds_for is not None else None
        return most is not None and len(self.matched_phones()) > most

    def shown_checks(self) -> list[CheckResult]:
        """The checks a failure's report explains: the failed ones, or, when too many phones matched,
        those of the phones that matched."""
        if not self.too_many_matched():
            return self.failures()
        matched = set(self.matched_phones())
        return [c for c in self.checks if c.phone in matched]

    def count_text(self) -> str | None:
        """``17 of 20 phones matched (needed at least 18)`` for an expectation with ``holds_for``; None
        without one."""
        if self.holds_for is None:
            return None
        named = counted(len(self.named_phones()), "phone")
        return f"{len(self.matched_phones())} of {named} matched (needed {self.holds_for.text})"


@dataclass(kw_only=True)
class ScenarioResult:
    name: str
    path: str
    reproduces: str
    expectations: list[ExpectationResult] = field(default_factory=list)
    error: str | None = None
    duration_s: float = 0.0
    phones: int = 0
    capture: str | None = None
    #: how ``run --capture``'s capture stopped early (its pcap writer's write failed), None if it did not
    capture_stopped: CaptureStop | None = None
    tags: list[str] = field(default_factory=list)
    #: when it started (seconds since the epoch; None: it never did): its JUnit suite's ``timestamp``
    started_at: float | None = None
    #: what it was doing when its steps ended (``in steps[3] (boot, f.yaml:14)``, ``in set-up (...)``;
    #: ``while closing its lab servers`` when closing raised first): an ERROR's report says it
    last_step: str | None = None
    #: an internal error's traceback, its last frames as Python prints them (the report of the ERROR)
    error_trace: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> Outcome:
        if self.error is not None:
            return Outcome.ERROR
        return combine([e.outcome for e in self.expectations])


@dataclass(kw_only=True)
class RunSummary:
    scenarios: list[ScenarioResult] = field(default_factory=list)
    duration_s: float = 0.0
    interrupted: bool = False
    #: interrupted: the scenarios stopped under way (ERROR, their expectations so far kept), in run order
    stopped: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(s.outcome.value for s in self.scenarios)

    def expectation_counts(self) -> Counter[str]:
        return Counter(e.outcome.value for s in self.scenarios for e in s.expectations)

    @property
    def ok(self) -> bool:
        return not self.interrupted and not any(s.outcome.bad for s in self.scenarios)
