"""Which decision a failed check names (``checks.SUBJECTS``, ``checks.decision_about``) and how the reports
show it for a fleet (phoneemu.scenario.reports): phones whose decisions about what they check differ are
told apart, alike ones read as one group, and the JUnit properties name each rule once."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from phoneemu.errors import VerifyReason
from phoneemu.phone.events import Decision
from phoneemu.scenario import checks
from phoneemu.scenario.loader import CHECKS
from phoneemu.scenario.reports import render_text, write_json, write_junit
from phoneemu.scenario.results import CheckResult, ExpectationResult, RunSummary, ScenarioResult

CTL = "CTLSEP0A0000000001.tlv"
DECIDING = "G.4-signed-by-itl-tftp (accepted) SEP{mac}.cnf.xml.sgn: signature verified"


def _ctl(rule: str, *, changed: bool = False, code: VerifyReason | None = None, retry: int = 0) -> Decision:
    said = f"§G.9 retry {retry}: " if retry else ""
    return Decision(rule=rule, accepted=code is None, reason=f"{said}{rule} reason", file=CTL, kind="CTL",
                    reason_code=code, artefact=object() if changed else None)


def _phone(*decisions: Decision, **steps: Any) -> Any:
    return SimpleNamespace(report=SimpleNamespace(decisions=decisions), https=steps.get("https"),
                           sip=steps.get("sip"), call=steps.get("call"))


def test_every_check_reads_a_known_item_or_the_boot() -> None:
    """A check added without saying what it reads is noticed here (module rules of checks.py)."""
    assert set(checks.SUBJECTS) == set(CHECKS)
    never_booted = SimpleNamespace(report=None, https=None, sip=None, call=None)
    for item in {i for i in checks.SUBJECTS.values() if i is not None}:
        assert checks.decision_about(item, never_booted) is None


@pytest.mark.parametrize(("decisions", "named"), [
    # the boot's own decision; §G.9 retries that found the list unchanged do not replace it
    ((_ctl("G.3.2-signed-by-ctl", changed=True), *(_ctl("G.3-unchanged", retry=n) for n in (1, 2, 3))),
     "G.3.2-signed-by-ctl"),
    # a rejection stands against later retries that found nothing new ...
    ((_ctl("G.3.5-reject-unknown-signer", code=VerifyReason.UNKNOWN_SIGNER),
      _ctl("G.3-unchanged", retry=1)), "G.3.5-reject-unknown-signer"),
    # ... but not against a retry that changed the list
    ((_ctl("G.3.5-reject-unknown-signer", code=VerifyReason.UNKNOWN_SIGNER),
      _ctl("G.3.2-signed-by-ctl", changed=True, retry=1)), "G.3.2-signed-by-ctl"),
    # unchanged first: a retry's rejection is the outcome
    ((_ctl("G.3-unchanged"), _ctl("G.3.4-tvs-unreachable", code=VerifyReason.TVS_UNREACHABLE, retry=1)),
     "G.3.4-tvs-unreachable"),
])
def test_a_trust_lists_decision_is_the_one_its_outcome_came_from(decisions: tuple[Decision, ...],
                                                                  named: str) -> None:
    config = Decision(rule="G.4-signed-by-itl-tftp", accepted=True, reason="ok", file="SEP.cnf.xml.sgn",
                      kind="config")
    said = checks.decision_about("ctl", _phone(*decisions, config))
    assert said is not None and said.startswith(f"{named} (")
    assert checks.decision_about("itl", _phone(*decisions, config)) is None


def test_capf_names_its_last_attempt_and_a_step_its_result() -> None:
    tried = Decision(rule="F.1-capf-unreachable", accepted=False, reason="refused", file="", kind="capf",
                     reason_code=VerifyReason.OTHER)
    done = Decision(rule="F.6-lsc-installed", accepted=True, reason="LSC installed", file="", kind="capf")
    sip = SimpleNamespace(rule="G.13-digest-rejected", registered=False, reason="401 twice", server="h:5060")
    phone = _phone(tried, done, sip=sip)
    assert checks.decision_about("capf", phone) == "F.6-lsc-installed (accepted) LSC installed"
    assert checks.decision_about("sip", phone) == "G.13-digest-rejected (rejected) h:5060: 401 twice"
    failed = SimpleNamespace(rule="", trusted=False, reason="connection refused", server="h:443")
    assert checks.decision_about("https", _phone(https=failed)) == "- (rejected) h:443: connection refused"


def _fleet(itl: dict[str, str | None]) -> ExpectationResult:
    """Phones that failed ``itl: updated`` alike (same actual value, same deciding rule), with the ITL
    decisions ``itl``."""
    return ExpectationResult(
        where="f.yaml:7", label="again", xfail=None,
        checks=[CheckResult(phone=mac, check="itl", expected="updated", actual="unchanged", held=False)
                for mac in itl],
        deciding={mac: DECIDING.format(mac=mac) for mac in itl},
        decisions={mac: {"itl": said} for mac, said in itl.items()})


def _report(tmp_path: Path, e: ExpectationResult) -> tuple[list[str], list[tuple[str, str]], dict[str, Any]]:
    summary = RunSummary(scenarios=[ScenarioResult(name="s", path="f.yaml", reproduces="", expectations=[e])])
    write_junit(summary, tmp_path / "r.xml")
    write_json(summary, tmp_path / "r.json")
    props = [(p.get("name") or "", p.get("value") or "")
             for p in ET.parse(tmp_path / "r.xml").getroot().iter("property")]
    doc = json.loads((tmp_path / "r.json").read_text())["scenarios"][0]["expectations"][0]
    return [line.strip() for line in render_text(summary).splitlines()], props, doc


def test_a_fleet_alike_reads_as_one_group_with_its_decision_once(tmp_path: Path) -> None:
    macs = [f"0A00000001{n:02d}" for n in range(50)]
    lines, props, doc = _report(tmp_path, _fleet(
        {mac: f"G.3-unchanged (accepted) ITLSEP{mac}.tlv: ITL unchanged" for mac in macs}))
    assert [line for line in lines if "decision:" in line] == \
        [f"itl decision: G.3-unchanged (accepted) ITLSEP{macs[0]}.tlv: ITL unchanged"]
    assert [p for p in props if p[0].startswith("itl ")] == \
        [("itl rule", "G.3-unchanged"), ("itl reason", f"ITLSEP{macs[0]}.tlv: ITL unchanged")]
    assert len(doc["decisions"]) == 50


def test_phones_whose_decisions_differ_are_told_apart(tmp_path: Path) -> None:
    """Same check, same actual value, same deciding rule, but another rule about the ITL: two groups, and
    each rule a property (``#2`` for the second); a phone that made none gets no property."""
    a, b, c, d = (f"0A000000020{n}" for n in range(1, 5))
    lines, props, _ = _report(tmp_path, _fleet({
        a: f"G.3-unchanged (accepted) ITLSEP{a}.tlv: ITL unchanged",
        b: f"G.3-unchanged (accepted) ITLSEP{b}.tlv: ITL unchanged",
        c: f"G.2-legacy-ignores-itl (rejected) ITLSEP{c}.tlv: ITL ignored", d: None}))
    assert f"2 phones ({a}, {b}): itl: expected 'updated', got 'unchanged'" in lines
    assert [line for line in lines if "decision:" in line] == [
        f"itl decision: G.3-unchanged (accepted) ITLSEP{a}.tlv: ITL unchanged",
        f"itl decision: G.2-legacy-ignores-itl (rejected) ITLSEP{c}.tlv: ITL ignored",
        "itl decision: none in the last boot"]
    assert [p for p in props if p[0].startswith("itl ")] == [
        ("itl rule", "G.3-unchanged"), ("itl reason", f"ITLSEP{a}.tlv: ITL unchanged"),
        ("itl rule #2", "G.2-legacy-ignores-itl"), ("itl reason #2", f"ITLSEP{c}.tlv: ITL ignored")]
    assert ("rule", "G.4-signed-by-itl-tftp") in props and ("rule #2", "G.4-signed-by-itl-tftp") not in props


def test_the_deciding_decision_is_not_said_twice(tmp_path: Path) -> None:
    mac = "0A0000000301"
    refused = f"G.4-bad-signature (rejected) SEP{mac}.cnf.xml.sgn: signature does not verify"
    failed = CheckResult(phone=mac, check="config", expected="accepted", actual="rejected", held=False)
    e = ExpectationResult(where="f.yaml:7", label="config", xfail=None, checks=[failed],
                          deciding={mac: refused}, decisions={mac: {"config": refused}})
    lines, props, _ = _report(tmp_path, e)
    assert f"deciding: {refused}" in lines and "config decision: the deciding one" in lines
    assert ("config rule", "G.4-bad-signature") in props  # the property says it all the same
