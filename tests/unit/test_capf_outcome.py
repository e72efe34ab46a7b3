"""Which CAPF outcomes fail ``boot`` and ``fleet boot`` (:mod:`phoneemu.phone.capf_outcome`): an operation
the phone started that did not complete; not one it never started (nothing pending, no string typed, no
server named, no CAPF client), nor one that went through. Every F rule id is classified once."""

from __future__ import annotations

import pytest

from phoneemu.phone.capf_outcome import (
    CAPF_DONE,
    CAPF_FAILED,
    CAPF_NOT_STARTED,
    CAPF_STEPS,
    capf_failed,
    capf_failure,
)
from phoneemu.phone.events import Decision
from phoneemu.phone.rule_ids import RULE_IDS


def _capf(rule: str, accepted: bool, reason: str = "r") -> Decision:
    return Decision(rule=rule, accepted=accepted, reason=reason, file="", kind="capf")


def test_every_f_rule_is_classified_exactly_once() -> None:
    sets = (CAPF_FAILED, CAPF_DONE, CAPF_NOT_STARTED, CAPF_STEPS)
    f_rules = {r for r in RULE_IDS if r.startswith("F.")}
    assert set().union(*sets) == f_rules
    assert sum(len(s) for s in sets) == len(f_rules)  # no rule in two sets


@pytest.mark.parametrize(("rule", "failed"), [
    ("F.6-capf-rejected", True), ("F.1-capf-unreachable", True), ("F.1-capf-server-untrusted", True),
    ("F.1-capf-cert-too-large", True),
    ("F.6-lsc-installed", False), ("F.6-lsc-deleted", False), ("F.6-fetched", False),
    ("F.6-nothing-pending", False),
    ("F.7-no-capf-operation", False), ("F.7-wait-auth-string", False), ("F.1-capf-not-supported", False),
    ("F.1-no-capf-server", False), (None, False),
])
def test_capf_failed_by_the_outcome_rule(rule: str | None, failed: bool) -> None:
    assert capf_failed(rule) is failed


def test_capf_failure_is_the_last_capf_decision_when_it_failed() -> None:
    config = Decision(rule="G.4-signed-by-itl-tftp", accepted=True, reason="config", file="SEP.cnf.xml.sgn")
    server = _capf("F.1-capf-cert-in-trust-list", True)
    rejected = _capf("F.6-capf-rejected", False, "CAPF ended the session: bad auth (reason 7)")
    assert capf_failure([server, rejected, config]) is rejected  # a later non-CAPF decision changes nothing
    assert capf_failure([server, _capf("F.6-lsc-installed", True), config]) is None
    assert capf_failure([_capf("F.7-wait-auth-string", False), config]) is None  # waits: not started
    assert capf_failure([config]) is None
    assert capf_failure([]) is None
