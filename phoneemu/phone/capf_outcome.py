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
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from phoneemu.phone.events import Decision

__all__ = ["CAPF_DONE", "CAPF_FAILED", "CAPF_NOT_STARTED", "CAPF_STEPS", "capf_failed", "capf_failure"]

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
