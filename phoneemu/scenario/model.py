"""Scenario data model: clusters, phone groups, ordered steps and expectations (design §3.10).

A scenario is data a voice engineer can read and edit. Every object remembers where it came
from (``where`` = ``file:line``) so that run-time failures point back at the file too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ClusterSpec",
    "Expectation",
    "HoldsFor",
    "PhoneGroup",
    "Scenario",
    "Step",
    "capture_stem",
]

_UNSAFE_IN_FILE_NAMES = re.compile(r"[^A-Za-z0-9._-]")
#: the longest capture file stem (``run --capture DIR/STEM.pcap``)
MAX_CAPTURE_STEM = 120


def capture_stem(name: str) -> str:
    """A scenario's capture file stem (``DIR/STEM.pcap``, ``.keys``, ``.note.txt``): its name with every
    character other than ``A-Za-z0-9._-`` written ``_``, no leading or trailing ``.`` or ``_``, at most
    120 characters (``capture`` if nothing is left). Different names can share one: ``run`` refuses them."""
    stem = _UNSAFE_IN_FILE_NAMES.sub("_", name).strip("._") or "capture"
    return stem[:MAX_CAPTURE_STEM]


@dataclass(frozen=True, kw_only=True)
class ClusterSpec:
    """The built-in lab (``external`` is None) or a real cluster at ``external`` addresses."""

    name: str
    where: str
    seed: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    external: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class PhoneGroup:
    """``count`` phones with consecutive MACs from ``mac_start`` sharing one profile."""

    name: str
    where: str
    cluster: str
    count: int = 1
    mac_start: str = "001122330001"
    profile: str = "cp-8861"
    profile_overrides: dict[str, Any] = field(default_factory=dict)
    encrypt: str | None = None
    symmetric_key: str | None = None
    capf: dict[str, Any] | None = None
    flash: dict[str, Any] = field(default_factory=dict)
    #: False: the cluster has no device entry for these phones (autoregistration, §G.10).
    registered: bool = True
    #: The phones' TFTP retransmission timing (RFC 1350, spec §H.3): wait ``tftp_timeout_ms`` for an
    #: answer, send again at most ``tftp_retries`` times; None: the phone's own (1000 ms, 5 retries).
    tftp_timeout_ms: int | None = None
    tftp_retries: int | None = None
    #: The cap on each whole TFTP transfer of these phones (``tftp: {max_time_ms}``; our convention, a
    #: dripping server is cut there); None: the phone's default (60 s or twice one block's retry budget).
    tftp_max_time_ms: int | None = None
    #: How long the phones wait for an HTTP 6970 answer before falling back to TFTP (spec §H.1), and
    #: for a TVS connection and answer (§E); None: the phone's own 5 s (our convention, spec [UNK]).
    http_timeout_ms: int | None = None
    tvs_timeout_ms: int | None = None

    def macs(self) -> list[str]:
        start = int(self.mac_start, 16)
        return [f"{start + i:012X}" for i in range(self.count)]


@dataclass(frozen=True, kw_only=True)
class Step:
    """One action: ``kind`` is the verb (boot, reset, admin, move, service, network, tamper, clock,
    erase, factory-reset, capf, expect), ``args`` its validated arguments."""

    kind: str
    where: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class HoldsFor:
    """How many of the phones an expectation names must match it (every check held): from ``at_least``
    to ``at_most`` (None: no upper bound), counts the loader resolved from what the file wrote (a
    percentage of the phones named: ``at_least`` rounded up, ``at_most`` down, so the share is met).
    ``text`` says it as the reports print it: ``none``, ``at least 18``, ``at least 18 = 90%``,
    ``at least 15 and at most 18``, ``exactly 3``."""

    at_least: int = 0
    at_most: int | None = None
    text: str

    def admits(self, matched: int) -> bool:
        """Whether ``matched`` phones satisfy the bound."""
        return matched >= self.at_least and (self.at_most is None or matched <= self.at_most)


@dataclass(frozen=True, kw_only=True)
class Expectation:
    """What must be true of the phones in ``phones`` (group names or MACs) at this point.

    ``checks`` maps a check name (itl, ctl, config, rule, deciding_rule, reason, status, lsc, firmware,
    locked_out, ...) to the expected value; a list value means "any of these".
    ``holds_for``: how many of the phones must match every check (None: all of them, the default).
    ``xfail`` (a reason) marks an expected failure: FAIL becomes XFAIL and PASS becomes XPASS.
    """

    where: str
    phones: tuple[str, ...]
    checks: dict[str, Any]
    xfail: str | None = None
    label: str | None = None
    holds_for: HoldsFor | None = None


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str
    path: str
    description: str
    reproduces: str  # the seed/spec section a catalogue file reproduces; "" in a site's own scenario
    clusters: dict[str, ClusterSpec]
    phones: dict[str, PhoneGroup]
    steps: tuple[Step | Expectation, ...]
    tags: tuple[str, ...] = ()
    #: The scenario's wall-clock limit in seconds (``timeout:``; 0 = none), overriding ``run --timeout``;
    #: None: the run's (:mod:`phoneemu.scenario.deadline`).
    timeout: int | None = None
    #: The line of the file's ``name:`` key; None when the name is the file name.
    name_line: int | None = None
