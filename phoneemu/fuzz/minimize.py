"""Shrink a crashing input while the same crash signature reproduces (bounded attempts and time).

Rules implemented here:

* Passes, each kept only while ``still_fails(candidate)`` holds: remove whole records (CTL/ITL,
  spec §B.2), remove header TLVs (spec §A.2; lengths derived again), truncate the tail, remove
  byte chunks of halving size, then zero byte chunks (simplify without shrinking).
* At most ``max_attempts`` calls of the predicate and ``time_limit`` seconds in total; the best
  input found so far is returned when a bound is hit. The result is never longer than the input.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from phoneemu.fuzz.tlvtree import parse_tree, serialise

__all__ = ["minimize"]


class _Budget:
    def __init__(self, attempts: int, seconds: float) -> None:
        self.left = attempts
        self.deadline = time.monotonic() + seconds

    def ok(self) -> bool:
        return self.left > 0 and time.monotonic() < self.deadline


def minimize(data: bytes, still_fails: Callable[[bytes], bool], *, records: bool = False,
             max_attempts: int = 400, time_limit: float = 10.0) -> bytes:
    """The smallest (then simplest) variant of ``data`` for which ``still_fails`` is true."""
    budget = _Budget(max_attempts, time_limit)
    best = bytes(data)

    def attempt(candidate: bytes) -> bool:
        nonlocal best
        if not budget.ok() or candidate == best or len(candidate) > len(best):
            return False
        budget.left -= 1
        if still_fails(candidate):
            best = candidate
            return True
        return False

    # 1. whole records, last first
    if records:
        i = len(parse_tree(best, records=True).records or ()) - 1
        while i >= 0 and budget.ok():
            tree = parse_tree(best, records=True)
            if tree.records is not None and i < len(tree.records):
                del tree.records[i]
                attempt(serialise(tree))
            i -= 1
    # 2. header TLVs (walk_header positions), from the end
    tree = parse_tree(best, records=records)
    i = sum(1 for _ in tree.walk_header()) - 1
    while i >= 0 and budget.ok():
        tree = parse_tree(best, records=records)
        nodes = list(tree.walk_header())
        if i < len(nodes):
            lst, j, _ = nodes[i]
            del lst[j]
            attempt(serialise(tree))
        i -= 1
    # 3. truncation: shortest prefix, coarse to fine
    step = max(1, len(best) // 2)
    while step >= 1 and budget.ok():
        while len(best) > step and attempt(best[: len(best) - step]):
            pass
        step //= 2
    # 4. chunk removal
    chunk = max(1, len(best) // 4)
    while chunk >= 1 and budget.ok():
        pos = 0
        while pos < len(best) and budget.ok():
            if not attempt(best[:pos] + best[pos + chunk:]):
                pos += chunk
        chunk //= 2
    # 5. zero chunks (same length, simpler content)
    chunk = max(1, len(best) // 8)
    while chunk >= 4 and budget.ok():
        for pos in range(0, len(best), chunk):
            if not budget.ok():
                break
            part = best[pos:pos + chunk]
            if part.strip(b"\0"):
                cand = best[:pos] + bytes(len(part)) + best[pos + chunk:]
                if budget.ok() and cand != best:
                    budget.left -= 1
                    if still_fails(cand):
                        best = cand
        chunk //= 2
    return best
