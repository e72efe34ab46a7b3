"""Shrink a crashing input while the same crash signature reproduces (bounded attempts and time).

Rules implemented here (ours: the spec is silent on fuzzing):

* Passes, each kept only while ``still_fails(candidate)`` holds: try the empty input (first: a parser
  that fails on every input shrinks in one attempt, not one per record and TLV — each a time-out for a
  hang), remove whole records (CTL/ITL, spec §B.2), remove header TLVs (spec §A.2; lengths derived
  again); then, repeated while a round still shrinks the input, cut the tail, cut the front and remove
  chunks (ddmin-like) — each at sizes of powers of two, coarse to fine, so that a cut keeps a word or block
  alignment (an ``.enc.sgn`` body is AES blocks, spec §C.3); last, zero byte chunks (simplify without
  shrinking).
* The budget is time-driven: up to ``max_attempts`` calls of the predicate (default
  :data:`MAX_ATTEMPTS`, 5,000) within ``time_limit`` seconds (default :data:`TIME_LIMIT`, 20 s), so a
  fast in-process target gets as far as the allowance lets it, and a slow command stops at the time
  limit; the best input found so far is returned when a bound is hit. Each round shrinks the input,
  so the passes end. The result is never longer than the input. An attempt that never returns is the
  caller's to stop: the fuzz engine's in-process one is stopped at once when it hangs or outlives the
  time limit, and fails (:meth:`phoneemu.fuzz.runwatch.RunWatch.stopping_hangs`); a command's is killed
  when it outlives the time limit (:meth:`phoneemu.fuzz.targets.CommandTarget.runs_ending_within`).
* A hang finding is kept only by attempts that hang, each costing up to the hang time-out: the engine
  minimises a hang (in process, or a command's) with at most :data:`HANG_MAX_ATTEMPTS` (500) attempts
  within :data:`HANG_TIME_LIMIT` (10 s), or the crash budget when smaller
  (:mod:`phoneemu.fuzz.minimize_plan`).
* A Ctrl-C (or SIGTERM, :mod:`phoneemu.interrupts`) while minimising is not swallowed: it is raised as
  :class:`MinimizeInterrupted`, a KeyboardInterrupt holding the smallest failing input found so far and
  the number of attempts completed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from phoneemu.fuzz.tlvtree import parse_tree, serialise

__all__ = ["HANG_MAX_ATTEMPTS", "HANG_TIME_LIMIT", "MAX_ATTEMPTS", "TIME_LIMIT", "MinimizeInterrupted",
           "minimize"]

#: the most predicate calls of one minimisation (ours; the time limit usually ends a slow target first)
MAX_ATTEMPTS = 5000
#: seconds one minimisation may take (ours)
TIME_LIMIT = 20.0
#: the most predicate calls of one hang's minimisation (ours; an attempt that hangs costs the hang time-out)
HANG_MAX_ATTEMPTS = 500
#: seconds one hang's minimisation may take (ours)
HANG_TIME_LIMIT = 10.0


class MinimizeInterrupted(KeyboardInterrupt):
    """A Ctrl-C while minimising (module docstring): ``best`` is the smallest input found so far that
    still fails (the input itself when none was), after ``attempts`` completed attempts."""

    def __init__(self, best: bytes, attempts: int) -> None:
        super().__init__(f"minimisation stopped after {attempts} attempts")
        self.best = best
        self.attempts = attempts


class _Budget:
    def __init__(self, attempts: int, seconds: float, clock: Callable[[], float]) -> None:
        self.left = attempts
        self.clock = clock
        self.deadline = clock() + seconds

    def ok(self) -> bool:
        return self.left > 0 and self.clock() < self.deadline


def _powers_of_two_below(n: int) -> Iterator[int]:
    """The powers of two smaller than ``n``, largest first (none for n <= 1)."""
    size = 1
    while size * 2 < n:
        size *= 2
    while size >= 1 and size < n:
        yield size
        size //= 2


class _Shrinker:
    """The best input so far and the passes that make it smaller (module docstring)."""

    def __init__(self, data: bytes, still_fails: Callable[[bytes], bool], budget: _Budget) -> None:
        self.best = bytes(data)
        self.still_fails = still_fails
        self.budget = budget
        self.completed = 0  # attempts whose predicate returned

    def attempt(self, candidate: bytes) -> bool:
        """Try a shorter (or simpler, same-length) ``candidate``: kept when it still fails."""
        if not self.budget.ok() or candidate == self.best or len(candidate) > len(self.best):
            return False
        self.budget.left -= 1
        fails = self.still_fails(candidate)
        self.completed += 1
        if fails:
            self.best = candidate
        return fails

    def drop_records(self) -> None:
        """Whole CTL/ITL records (spec §B.2), last first."""
        i = len(parse_tree(self.best, records=True).records or ()) - 1
        while i >= 0 and self.budget.ok():
            tree = parse_tree(self.best, records=True)
            if tree.records is not None and i < len(tree.records):
                del tree.records[i]
                self.attempt(serialise(tree))
            i -= 1

    def drop_header_tlvs(self, records: bool) -> None:
        """Header TLVs (spec §A.2, walk_header positions), from the end."""
        tree = parse_tree(self.best, records=records)
        i = sum(1 for _ in tree.walk_header()) - 1
        while i >= 0 and self.budget.ok():
            tree = parse_tree(self.best, records=records)
            nodes = list(tree.walk_header())
            if i < len(nodes):
                lst, j, _ = nodes[i]
                del lst[j]
                self.attempt(serialise(tree))
            i -= 1

    def cut_tail(self) -> None:
        """The shortest prefix: cut powers of two off the end, coarse to fine."""
        for step in _powers_of_two_below(len(self.best)):
            while len(self.best) > step and self.attempt(self.best[:len(self.best) - step]):
                pass

    def cut_front(self) -> None:
        """The shortest suffix: cut powers of two off the front, coarse to fine."""
        for step in _powers_of_two_below(len(self.best)):
            while len(self.best) > step and self.attempt(self.best[step:]):
                pass

    def remove_chunks(self) -> None:
        """Remove chunks of halving sizes (powers of two) anywhere, front to end (ddmin's complements)."""
        for chunk in _powers_of_two_below(len(self.best)):
            pos = 0
            while pos < len(self.best) and self.budget.ok():
                if not self.attempt(self.best[:pos] + self.best[pos + chunk:]):
                    pos += chunk

    def zero_chunks(self) -> None:
        """Zero chunks of at least 4 bytes (same length, simpler content)."""
        chunk = max(1, len(self.best) // 8)
        while chunk >= 4 and self.budget.ok():
            for pos in range(0, len(self.best), chunk):
                part = self.best[pos:pos + chunk]
                if part.strip(b"\0"):
                    self.attempt(self.best[:pos] + bytes(len(part)) + self.best[pos + chunk:])
            chunk //= 2


def minimize(data: bytes, still_fails: Callable[[bytes], bool], *, records: bool = False,
             max_attempts: int = MAX_ATTEMPTS, time_limit: float = TIME_LIMIT,
             clock: Callable[[], float] = time.monotonic) -> bytes:
    """The smallest (then simplest) variant of ``data`` for which ``still_fails`` is true (module
    docstring: the passes, the budget; ``time_limit`` seconds by ``clock``); a Ctrl-C meanwhile:
    :class:`MinimizeInterrupted`, with the smallest found so far."""
    shrinker = _Shrinker(data, still_fails, _Budget(max_attempts, time_limit, clock))
    try:
        _run_passes(shrinker, records=records)
    except KeyboardInterrupt as exc:
        raise MinimizeInterrupted(shrinker.best, shrinker.completed) from exc
    return shrinker.best


def _run_passes(shrinker: _Shrinker, *, records: bool) -> None:
    """The passes of the module docstring, in order, until the budget or a round that shrinks nothing."""
    shrinker.attempt(b"")  # a failure of the empty input: nothing smaller, no pass needed (one attempt)
    if records:
        shrinker.drop_records()
    shrinker.drop_header_tlvs(records)
    while shrinker.budget.ok():
        before = len(shrinker.best)
        shrinker.cut_tail()
        shrinker.cut_front()
        shrinker.remove_chunks()
        if len(shrinker.best) >= before:  # a round that shrinks nothing: the next would not either
            break
    shrinker.zero_chunks()
