"""Failures of a fleet grouped by what they have in common (issue #6): 5,000 phones locked out by one
TVS outage read as one line with a count, not five copies of the same line and "4,995 more".

Rules (our convention):

* Two failures are alike when the fields named at construction agree (e.g. outcome, deciding rule,
  reason, signer), a phone's own MAC in a value read as ``{mac}`` (as scenario reports do):
  ``TFTP timeout for SEP{mac}.cnf.xml.sgn`` is one kind for every phone.
* Each kind keeps its count and its first :data:`MACS_KEPT` MACs (listed in MAC order). At most
  :data:`KINDS_KEPT` kinds are kept per run (memory stays bounded whatever the storm); failures of
  further kinds are counted in ``other``.
* Kinds merge across shards by adding counts; the MACs kept are the first ones of each shard in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["KINDS_KEPT", "MACS_KEPT", "Alike"]

#: distinct kinds of failure remembered per run
KINDS_KEPT = 50
#: example MACs kept per kind
MACS_KEPT = 3


class Alike:
    """Failures grouped by the values of ``fields``; see the module docstring."""

    def __init__(self, fields: Sequence[str]) -> None:
        self.fields = tuple(fields)
        self._kinds: dict[tuple[str | None, ...], tuple[int, list[str]]] = {}
        self.other = 0

    def add(self, mac: str, values: Mapping[str, str | None]) -> None:
        """One failure of the phone ``mac``; ``values`` holds each of ``fields``."""
        key = tuple(_masked(values.get(f), mac) for f in self.fields)
        self._count(key, 1, [mac])

    def _count(self, key: tuple[str | None, ...], count: int, macs: list[str]) -> None:
        got = self._kinds.get(key)
        if got is None:
            if len(self._kinds) >= KINDS_KEPT:
                self.other += count
                return
            self._kinds[key] = (count, macs[:MACS_KEPT])
            return
        total, kept = got
        self._kinds[key] = (total + count, (kept + macs)[:MACS_KEPT])

    def merge(self, other: Alike) -> Alike:
        for kind in other.kinds():
            self._count(tuple(kind[f] for f in self.fields), kind["count"], kind["macs"])
        self.other += other.other
        return self

    def kinds(self) -> list[dict[str, Any]]:
        """Most common first: ``{"count": 100, <field>: value, ..., "macs": [first MACs]}``."""
        ordered = sorted(self._kinds.items(), key=lambda item: -item[1][0])
        return [{"count": n, **dict(zip(self.fields, key, strict=True)), "macs": sorted(macs)}
                for key, (n, macs) in ordered]

    def to_state(self) -> dict[str, Any]:
        return {"kinds": self.kinds(), "other": self.other}

    @classmethod
    def from_state(cls, fields: Sequence[str], state: Mapping[str, Any] | None) -> Alike:
        alike = cls(fields)
        if state:
            for kind in state.get("kinds", []):
                alike._count(tuple(kind.get(f) for f in alike.fields), int(kind["count"]), list(kind["macs"]))
            alike.other += int(state.get("other", 0))
        return alike


def _masked(value: str | None, mac: str) -> str | None:
    """``value`` with the phone's own MAC read as ``{mac}``."""
    return value.replace(mac, "{mac}") if value else value
