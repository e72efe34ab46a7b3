"""Whether a boot's CAPF operation failed (spec §F): the one rule ``boot`` and ``fleet boot`` exit by.

A boot's CAPF outcome is the rule of its last CAPF decision (``kind`` ``capf``; a fleet record's ``capf``).
The phone *attempted* a CAPF operation when it started a CAPF session — connected, or tried to, to a CAPF
server of its config (spec §F.1, with its retries) —, and that operation *failed* when the session ended
without one of the F.6 endings of a session that went through (our convention):

* failed (:data:`CAPF_FAILED`): ``F.6-capf-rejected`` (the server ended the session: a wrong authentication
  string, an unknown device, a key generation refused or cut, an LSC the phone refused ...),
  ``F.1-capf-unreachable`` (every attempt failed in transport), ``F.1-capf-server-untrusted`` and
  ``F.1-capf-cert-too-large`` (the last attempt's server refused by §F.1, §G.5);
* done (:data:`CAPF_DONE`): ``F.6-lsc-installed``, ``F.6-lsc-deleted``, ``F.6-fetched``,
  ``F.6-nothing-pending`` (the server had nothing for the phone: nothing to do is no failure);
* not attempted, so no failure (:data:`CAPF_NOT_STARTED`): ``F.7-no-capf-operation`` (capfAuthMode 0, no
  operation pending: recorded when an encrypted config could not be read, which fails the boot by its own
  rule), ``F.7-wait-auth-string`` (by authentication string, none typed: the phone waits for its user, as a
  real one does), ``F.1-capf-not-supported`` (a model without a CAPF client), ``F.1-no-capf-server``
  (capfAuthMode set, no ``<capfList>`` server to go to), ``F.1-capf-not-replayed`` (``replay``: the capture
  holds the session, which a replay does not run: :mod:`phoneemu.scenario.replay`);
* steps of a session, never its outcome (:data:`CAPF_STEPS`): the §F.1 decisions on the server's
  certificate that let it go on.

Every F rule id (:data:`phoneemu.phone.rule_ids.RULE_IDS`) is in exactly one of these sets (a test checks
it), so a CAPF rule added later is classified here, not counted by accident.

An offline boot (``replay``'s, ``predict``'s) has no CAPF server: its CAPF operation fails in transport with
words starting :data:`CAPF_OFFLINE`, and :func:`capf_not_deciding` keeps that failure, which is no live
phone's, from deciding a boot that accepted a configuration (our convention).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from phoneemu.phone.boot import BootReport
    from phoneemu.phone.events import Decision

__all__ = ["CAPF_DONE", "CAPF_FAILED", "CAPF_NOT_REPLAYED", "CAPF_NOT_REPLAYED_RULE", "CAPF_NOT_STARTED",
           "CAPF_OFFLINE", "CAPF_STEPS", "CAPF_UNAVAILABLE_OFFLINE", "capf_failed", "capf_failure",
           "capf_not_deciding"]

CAPF_FAILED = frozenset({"F.6-capf-rejected", "F.1-capf-unreachable", "F.1-capf-server-untrusted",
                         "F.1-capf-cert-too-large"})
CAPF_DONE = frozenset({"F.6-lsc-installed", "F.6-lsc-deleted", "F.6-fetched", "F.6-nothing-pending"})
CAPF_NOT_STARTED = frozenset({"F.7-no-capf-operation", "F.7-wait-auth-string", "F.1-capf-not-supported",
                              "F.1-no-capf-server",
                              # replay: the session is in the capture, not replayed offline (its outcome was
                              # the live phone's): no failure of the replayed boot
                              "F.1-capf-not-replayed"})
CAPF_STEPS = frozenset({"F.1-capf-cert-in-trust-list", "F.1-capf-vouched-by-tvs", "F.1-capf-needs-tvs"})


def capf_failed(rule: str | None) -> bool:
    """Whether ``rule``, a boot's CAPF outcome (None: the boot made no CAPF decision), is a CAPF operation
    the phone attempted that did not complete (module rules)."""
    return rule in CAPF_FAILED


def capf_failure(decisions: Iterable[Decision]) -> Decision | None:
    """The decision that ended the boot's failed CAPF operation (its last CAPF decision, when
    :func:`capf_failed`), or None: no CAPF decision, an operation done, or none attempted."""
    last = None
    for d in decisions:
        if d.kind == "capf":
            last = d
    return last if last is not None and capf_failed(last.rule) else None


#: the words an offline CAPF (``replay``'s :func:`phoneemu.scenario.replay.offline_capf`, ``predict``'s)
#: starts its failure with: one text, written here only
CAPF_OFFLINE = "CAPF unavailable offline"
#: what replay's offline CAPF says when the capture holds no session with the config's CAPF server
#: (:mod:`phoneemu.scenario.replay`, "Offline decisions"); ``predict`` says ``CAPF unavailable offline
#: (predict)``
CAPF_UNAVAILABLE_OFFLINE = f"{CAPF_OFFLINE} (a capture or forecast has no CAPF server)"
#: what it says when the capture holds one, a TLS connection to its port: not replayed (no CAPF offline)
CAPF_NOT_REPLAYED = "CAPF session in the capture, not replayed"
#: the rule of a CAPF operation whose session the capture holds: not replayed, so neither done nor failed
#: (:data:`CAPF_NOT_STARTED`)
CAPF_NOT_REPLAYED_RULE = "F.1-capf-not-replayed"


def _offline_capf_said(d: Decision) -> bool:
    """Whether ``d`` is the phone's CAPF failure that an offline CAPF made (not the live phone's)."""
    return d.kind == "capf" and d.rule == "F.1-capf-unreachable" and \
        (CAPF_NOT_REPLAYED in d.reason or CAPF_OFFLINE in d.reason)


def capf_not_deciding(report: BootReport) -> BootReport:
    """``report`` with the CAPF operation an offline boot (``replay``, ``predict``) could not run said as
    such (:mod:`phoneemu.scenario.replay`, "Offline decisions"): one whose session the capture holds is
    :data:`CAPF_NOT_REPLAYED_RULE` (no reason code: not a refusal); neither that nor :data:`CAPF_OFFLINE`
    decides a boot that accepted a configuration — its deciding decision is then the one the boot would
    have without it (``phoneemu.phone.boot``: the next rejected trust-list, static file, CAPF or firmware
    decision, else the config's acceptance), as of a live boot whose CAPF went through (was: ``deciding:
    F.1-capf-unreachable`` on an OK boot, where the live phone's was the config's rule; ``predict`` until
    session 41, and ``predict --fleet-flash`` filed accepted phones under it)."""
    from phoneemu.phone.events import Decision

    renamed: dict[int, Decision] = {}
    if not hasattr(report, "decisions"):  # a test's stand-in phone reports otherwise
        return report
    for d in report.decisions:
        if _offline_capf_said(d) and CAPF_NOT_REPLAYED in d.reason:
            reason = d.reason[d.reason.index(CAPF_NOT_REPLAYED):]  # not "after 1 attempts": none was made
            renamed[id(d)] = Decision(rule=CAPF_NOT_REPLAYED_RULE, accepted=False, reason=reason, file=d.file,
                                      kind="capf")
    if not renamed and (report.deciding is None or not _offline_capf_said(report.deciding)):
        return report
    decisions = tuple(renamed.get(id(d), d) for d in report.decisions)
    deciding = report.deciding
    if report.ok and deciding is not None and (_offline_capf_said(deciding) or id(deciding) in renamed):
        standing = [d for d in decisions if not d.accepted and not d.pending and d.reason_code is not None
                    and d.kind in ("CTL", "ITL", "capf", "firmware", "static") and not _offline_capf_said(d)]
        config = [d for d in decisions if d.accepted and d.kind == "config"]
        named = [d for d in config if d.file == report.config_file]
        deciding = standing[0] if standing else (named or config or [deciding])[-1]
    elif deciding is not None:
        deciding = renamed.get(id(deciding), deciding)
    return dataclasses.replace(report, decisions=decisions, deciding=deciding,
                               timeline=tuple(_capf_timeline(line) for line in report.timeline))


def _capf_timeline(line: str) -> str:
    """A timeline line of a CAPF session the capture holds said as :func:`capf_not_deciding` says it (the
    phone's note of an unreachable server, its decision after "1 attempts")."""
    if CAPF_NOT_REPLAYED not in line:
        return line
    line = line.replace(f"CAPF unreachable: {CAPF_NOT_REPLAYED}", CAPF_NOT_REPLAYED)
    return re.sub(r"F\.1-capf-unreachable rejected: after \d+ attempts: ",
                  f"{CAPF_NOT_REPLAYED_RULE} rejected: ", line)
