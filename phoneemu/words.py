"""Counts in what the user reads: ``1 phone``, ``2 phones``, never ``1 phones`` nor ``2 phone(s)``.

Light on purpose (it imports nothing): command modules use it at module level
(tests/unit/test_cli_startup.py), the fleet and the scenario reports too.
"""

from __future__ import annotations

__all__ = ["counted"]


def counted(n: int, noun: str, plural: str | None = None, *, grouped: bool = False) -> str:
    """``1 phone``, ``3 phones``: ``n`` and ``noun`` agreeing (``plural`` when it is not ``noun`` + s:
    ``counted(2, "entry", "entries")``); ``grouped`` writes ``n`` with thousands separators (``1,204``)."""
    number = f"{n:,}" if grouped else str(n)
    return f"{number} {noun}" if n == 1 else f"{number} {plural or noun + 's'}"
