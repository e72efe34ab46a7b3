"""Failures of a fleet grouped by what they have in common (issue #6): 5,000 phones locked out by one
TVS outage read as one line with a count, not five copies of the same line and "4,995 more".

Rules (our convention):

* Two failures are alike when the fields named at construction agree (e.g. outcome, deciding rule,
  reason, signer), a phone's own MAC in a value read as ``{mac}`` (as scenario reports do):
  ``TFTP timeout for SEP{mac}.cnf.xml.sgn`` is one kind for every phone.
* A number that says how far or how long one phone's exchange got — not what went wrong — is read as
  ``{n}`` too (:data:`_PER_PHONE`): the TFTP block reached (``stalled at block 7``, ``DATA 7``), bytes
  (``(after 120 bytes of it)``, ``the 4213-byte body``, ``(70000 received)``, ``truncated at 300 of
  4213``), seconds (``0.3 s``, ``2.5s into``), a count of packets or messages (``3 packet(s)``, ``2 more
  left unanswered``) and the port a TFTP reply came from (the server's transfer ID, new for each
  transfer), and the opcode of a datagram that is no TFTP packet (``unknown opcode 31332``: the first two
  bytes of a server's garbage, other for each phone). A storm that cuts 1,000 phones at 1,000 blocks, or
  a server answering garbage, is one kind, not :data:`KINDS_KEPT` kinds and the rest "other". Numbers
  that tell kinds apart are kept as they are: a TFTP error code, an HTTP status, a rule id (``G.3.5``), a
  file name, a server's ``host:port``, an offset in a file, a count of retries (the fleet's own setting).
* A kind shows the range each such number took over its phones, ``lo-hi`` (``stalled at block 7-19
  after 1 retries``), or the one value when all agree (a kind of one phone reads as that phone's text).
  The range is two numbers per ``{n}`` of a kind: memory stays bounded.
* Each kind keeps its count and its :data:`MACS_KEPT` lowest MACs (in MAC order: the same whatever order
  the phones finished in, for CI diffs; were the first to finish, sorted). At most
  :data:`KINDS_KEPT` kinds are kept per run (memory stays bounded whatever the storm); failures of
  further kinds are counted in ``other``.
* Kinds merge across shards by adding counts and widening the ranges (a kind's text read back groups as
  its phones' texts did: a range ``7-19`` is read as a number); the MACs kept are the lowest of all the
  shards'.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["KINDS_KEPT", "MACS_KEPT", "Alike"]

#: distinct kinds of failure remembered per run
KINDS_KEPT = 50
#: example MACs kept per kind
MACS_KEPT = 3

#: a number (``12``, ``0.3``) or a range of them as a kind shows it (``7-19``)
_NUMBER = r"(\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?)"
#: what follows a number standing alone that is one phone's measure
_MEASURE = "|".join((
    r" (?:body )?bytes\b|-byte\b| received\)",  # bytes come so far, a size
    r" ?s\b",  # seconds
    r" (?:\w+ )?\w+\(s\)| more left unanswered",  # packets, responses, requests
))
#: where a number is one phone's own measure (module rules); each group is one. Each pattern starts with
#: a word or a character class (not a look-behind), so that a scan skips ahead: a fifth of the time
_PER_PHONE = tuple(re.compile(p) for p in (
    r"(?:block|DATA) " + _NUMBER + r"(?!\w)",  # the TFTP block reached
    r"truncated at " + _NUMBER + " of " + _NUMBER + r"(?!\w)",  # bytes come so far, of the size
    r"reply(?: at offset \d+)? from \S+:" + _NUMBER + r"(?!\w)",  # a TFTP reply's port: the server's TID
    # the first bytes of a datagram that is no TFTP packet (a server talking garbage): what it held, not
    # what went wrong; read as a measure, a garbage-talking server is one kind, not one per phone
    r"unknown opcode " + _NUMBER + r"(?!\w)",
    # standing alone: after a space, a ``(`` or at the start (not in ``G.3.5``, ``cp-7962``, a file name)
    r"(?:^|[\s(])" + _NUMBER + f"(?={_MEASURE})",
))

#: a value as grouped: the text around its per-phone numbers (one more piece than numbers)
_Pieces = tuple[str, ...]
#: the lowest and highest of one per-phone number, as written
_Range = tuple[str, str]


@dataclass
class _Kind:
    count: int
    macs: list[str]
    ranges: list[_Range]  # each field's per-phone numbers in turn


class Alike:
    """Failures grouped by the values of ``fields``; see the module docstring."""

    def __init__(self, fields: Sequence[str]) -> None:
        self.fields = tuple(fields)
        self._kinds: dict[tuple[_Pieces | None, ...], _Kind] = {}
        self.other = 0

    def add(self, mac: str, values: Mapping[str, str | None]) -> None:
        """One failure of the phone ``mac``; ``values`` holds each of ``fields``."""
        self._add_values([_masked(values.get(f), mac) for f in self.fields], 1, [mac])

    def _add_values(self, values: Sequence[str | None], count: int, macs: list[str]) -> None:
        """``count`` failures whose fields read ``values`` (MACs masked; numbers may be ranges)."""
        key: list[_Pieces | None] = []
        ranges: list[_Range] = []
        for value in values:
            if value is None:
                key.append(None)
                continue
            pieces, spans = _shape(value)
            key.append(pieces)
            ranges.extend(spans)
        self._count(tuple(key), count, macs, ranges)

    def _count(self, key: tuple[_Pieces | None, ...], count: int, macs: list[str],
               ranges: list[_Range]) -> None:
        got = self._kinds.get(key)
        if got is None:
            if len(self._kinds) >= KINDS_KEPT:
                self.other += count
                return
            self._kinds[key] = _Kind(count, sorted(macs)[:MACS_KEPT], ranges)
            return
        got.count += count
        got.macs = sorted(got.macs + macs)[:MACS_KEPT]  # the lowest: the same whatever order phones end in
        got.ranges = [_widened(a, b) for a, b in zip(got.ranges, ranges, strict=True)]

    def merge(self, other: Alike) -> Alike:
        for kind in other.kinds():
            self._add_values([kind[f] for f in self.fields], kind["count"], kind["macs"])
        self.other += other.other
        return self

    def kinds(self) -> list[dict[str, Any]]:
        """Most common first: ``{"count": 100, <field>: value, ..., "macs": [first MACs]}``, each per-phone
        number of a value shown as the range its phones took."""
        ordered = sorted(self._kinds.items(), key=lambda item: -item[1].count)
        return [{"count": kind.count, **dict(zip(self.fields, _shown(key, kind.ranges), strict=True)),
                 "macs": sorted(kind.macs)}
                for key, kind in ordered]

    def to_state(self) -> dict[str, Any]:
        return {"kinds": self.kinds(), "other": self.other}

    @classmethod
    def from_state(cls, fields: Sequence[str], state: Mapping[str, Any] | None) -> Alike:
        alike = cls(fields)
        if state:
            for kind in state.get("kinds", []):
                alike._add_values([kind.get(f) for f in alike.fields], int(kind["count"]), list(kind["macs"]))
            alike.other += int(state.get("other", 0))
        return alike


def _masked(value: str | None, mac: str) -> str | None:
    """``value`` with the phone's own MAC read as ``{mac}``."""
    return value.replace(mac, "{mac}") if value else value


def _shape(value: str) -> tuple[_Pieces, list[_Range]]:
    """``value`` cut around its per-phone numbers (:data:`_PER_PHONE`): the pieces between them and each
    number's range (``7`` -> ``("7", "7")``, ``7-19`` -> ``("7", "19")``)."""
    spans = sorted(m.span(g) for pattern in _PER_PHONE for m in pattern.finditer(value)
                   for g in range(1, pattern.groups + 1))
    pieces: list[str] = []
    ranges: list[_Range] = []
    at = 0
    for start, end in spans:
        if start < at:  # two rules read one number (or a group that did not match: -1): once
            continue
        pieces.append(value[at:start])
        lo, _, hi = value[start:end].partition("-")
        ranges.append((lo, hi or lo))
        at = end
    pieces.append(value[at:])
    return tuple(pieces), ranges


def _widened(a: _Range, b: _Range) -> _Range:
    """The range covering ``a`` and ``b``."""
    return (min(a[0], b[0], key=float), max(a[1], b[1], key=float))


def _shown(key: tuple[_Pieces | None, ...], ranges: list[_Range]) -> list[str | None]:
    """Each field's text with its ranges put back (``lo-hi``, or ``lo`` when they agree)."""
    out: list[str | None] = []
    left = iter(ranges)
    for pieces in key:
        if pieces is None:
            out.append(None)
            continue
        text = pieces[0]
        for piece in pieces[1:]:
            lo, hi = next(left)
            text += (lo if float(lo) == float(hi) else f"{lo}-{hi}") + piece
        out.append(text)
    return out
