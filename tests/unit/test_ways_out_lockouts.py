"""Every lockout has its ways out (``phoneemu.phone.ways_out``): each rule that can lock a phone out
(kinds ITL, CTL and config) has ways out or is listed in ``NO_WAY_OUT`` with why; every way names the
seed or spec section it comes from; the ways added for the rules that had none (``G.4-tvs-server-untrusted``,
``G.4-tvs-wrong-role``, ``G.4-expired-signer``, the unsupported hash) and the bulk export of CTL phones;
the catalogue scenarios that rehearse the expired config signer's and the unsupported hash's."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from phoneemu.phone.rule_ids import RULE_IDS
from phoneemu.phone.ways_out import NO_WAY_OUT, WAYS_BY_KIND, way_out_lines, ways_out
from phoneemu.scenario.loader import load_file
from phoneemu.scenario.model import Expectation, Step

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

#: G.2 / G.3 / G.4 outcomes that accept a file, wait for TVS or ignore a file without a reason code: no
#: lockout (phoneemu.phone.boot: ``locked_out`` needs a rejection with a reason code, or a config refused
#: by a ``G.4-`` / ``G.3.5-`` rule). A new id in these sections is a lockout until listed here.
_NOT_LOCKOUTS = frozenset({
    "G.2-first-ctl-tofu", "G.2-first-itl-tofu", "G.2-legacy-ignores-itl",
    "G.3-unchanged", "G.3.2-signed-by-ctl", "G.3.3-signed-by-itl-sast", "G.3.4-needs-tvs",
    "G.3.4-vouched-by-tvs",
    "G.3.6-empty-itl-accepts-any",
    "G.4-empty-itl-accepts-unsigned", "G.4-empty-itl-signature-unchecked", "G.4-needs-tvs",
    "G.4-signed-by-ctl-tftp", "G.4-signed-by-itl-tftp", "G.4-signed-unchecked-no-trust-list",
    "G.4-unsigned-no-trust-list", "G.4-vouched-by-tvs",
})


def _lockout_rules() -> list[tuple[str, str]]:
    """(kind, rule) of every rule that can lock a phone out: a trust list refused (``G.3*``) or a config
    refused by a signer rule (``G.4-*``, ``G.3.5-locked-ignores-config``)."""
    lists = sorted(r for r in RULE_IDS if r.startswith("G.3") and r not in _NOT_LOCKOUTS
                   and r != "G.3.5-locked-ignores-config")
    configs = sorted(r for r in RULE_IDS if r.startswith("G.4-") and r not in _NOT_LOCKOUTS)
    return [(kind, r) for kind in ("ITL", "CTL") for r in lists] + \
        [("config", r) for r in [*configs, "G.3.5-locked-ignores-config"]]


_LOCKOUTS = _lockout_rules()


@pytest.mark.parametrize(("kind", "rule"), _LOCKOUTS, ids=[f"{k}-{r}" for k, r in _LOCKOUTS])
def test_every_lockout_rule_has_ways_out_or_none_on_purpose(kind: str, rule: str) -> None:
    has_ways = bool(WAYS_BY_KIND[kind].get(rule))
    why = NO_WAY_OUT.get((kind, rule), "")
    assert has_ways != bool(why), f"{kind} {rule}: ways out {has_ways}, none on purpose {why!r}"


def test_none_on_purpose_names_only_lockout_rules() -> None:
    assert set(NO_WAY_OUT) <= set(_LOCKOUTS), sorted(set(NO_WAY_OUT) - set(_LOCKOUTS))
    assert ("config", "G.4-malformed") in NO_WAY_OUT and ways_out("G.4-malformed", "config") == ()


def test_every_way_names_its_seed_or_spec_section() -> None:
    for kind, table in WAYS_BY_KIND.items():
        for rule, ways in table.items():
            for way in ways:
                text = f"{way.when} {way.action}"
                assert "seed:" in text or "spec §" in text, (kind, rule, way.when)


def _scenarios(rule: str, kind: str) -> list[str]:
    return [w.scenario for w in ways_out(rule, kind)]


def test_a_config_tvs_server_untrusted_or_wrong_role_takes_the_ways_that_need_no_tvs_answer() -> None:
    """TVS not usable (its certificate not in the ITL) or knowing the config signer without a TFTP role:
    rollback on the central TFTP (seed: Update ITL File; the catalogue's centralized-tftp-caveat locks
    out with G.4-tvs-server-untrusted), rollback before a move, the bulk ITL reset on the own cluster."""
    assert _scenarios("G.4-tvs-server-untrusted", "config") == \
        ["centralized-tftp-caveat", "rollback-empty-itl-escape", "bulk-itl-reset-localkey"]
    assert _scenarios("G.4-tvs-wrong-role", "config") == \
        ["centralized-tftp-caveat", "rollback-empty-itl-escape"]
    lines = way_out_lines("G.4-tvs-server-untrusted", "config", fill={"CENTRAL": "/tmp/c"})
    assert lines[1].startswith("    lab: phoneemu lab rollback /tmp/c on   rehearse: ")
    assert "rollback-empty-itl-escape" in _scenarios("G.3.4-tvs-wrong-role", "ITL")


def test_an_expired_config_signer_renews_the_callmanager_certificate() -> None:
    (way,) = ways_out("G.4-expired-signer", "config")
    assert way.when.startswith("an expired config signer (the CallManager certificate")
    assert "regenerate the CallManager certificate" in way.action
    assert "seed: Initial Trust List" in way.action and "seed: Certificate Management Changes" in way.action
    assert (way.lab, way.scenario) == ("phoneemu lab regenerate DIR callmanager", "callmanager-expiry")


_HASH = [("G.3.1-unsupported-hash", "ITL"), ("G.3.1-unsupported-hash", "CTL"),
         ("G.4-unsupported-hash", "config")]


@pytest.mark.parametrize(("rule", "kind"), _HASH)
def test_an_unsupported_hash_is_signed_with_sha1_again(rule: str, kind: str) -> None:
    (way,) = ways_out(rule, kind)
    assert "TFTP File Signature Algorithm back to SHA-1" in way.action and "spec §A.4" in way.action
    assert way.lab == "phoneemu lab signature-algorithm DIR sha1"
    lines = way_out_lines(rule, kind, fill={"DIR": "/tmp/lab"})
    assert lines[1] == ("    lab: phoneemu lab signature-algorithm /tmp/lab sha1   "
                        "rehearse: phoneemu run scenarios/signature-algorithm-sha1-again.yaml")


_REHEARSED = [("G.4-expired-signer", "config"), ("G.3.1-unsupported-hash", "ITL")]


@pytest.mark.parametrize(("rule", "kind"), _REHEARSED)
def test_a_new_ways_scenario_locks_out_under_its_rule_runs_its_lab_command_then_recovers(rule: str,
                                                                                        kind: str) -> None:
    """The catalogue scenario a way names rehearses it: a phone group locked out with the way's rule
    deciding, then an admin step doing the way's lab command (``lab OP DIR ARG`` as ``{op: OP, ...: ARG}``),
    then the same phones not locked, their config accepted (``callmanager-expiry``,
    ``signature-algorithm-sha1-again``; before, the expired signer named ``itlrecovery-expiry``, which
    never locks out under ``G.4-expired-signer``, and the unsupported hash named none)."""
    (way,) = ways_out(rule, kind)
    assert way.scenario, f"{kind} {rule}: no scenario rehearses {way.lab!r}"
    serves = {r for table in WAYS_BY_KIND.values() for r, ways in table.items() if way in ways}
    steps = load_file(SCENARIOS / f"{way.scenario}.yaml").steps
    found = next(((i, s) for i, s in enumerate(steps) if isinstance(s, Expectation)
                  and s.checks.get("deciding_rule") in serves and s.checks.get("locked_out") is True), None)
    assert found, f"{way.scenario}: no phones locked out with {sorted(serves)} deciding"
    locked, lockout = found
    words = shlex.split(way.lab)
    op, args = words[2], words[4:]  # phoneemu lab OP DIR ARG...
    admin = next((i for i, s in enumerate(steps) if i > locked and isinstance(s, Step) and s.kind == "admin"
                  and s.args.get("op") == op and set(args) <= {str(v) for v in s.args.values()}), None)
    assert admin, f"{way.scenario}: no admin step {op} {args} after the lockout"
    assert any(isinstance(s, Expectation) and s.phones == lockout.phones
               and s.checks.get("locked_out") is False and s.checks.get("config") == "accepted"
               for s in steps[admin + 1:]), way.scenario
