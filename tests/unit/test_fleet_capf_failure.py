"""``fleet boot``: a phone whose config was accepted but whose CAPF operation failed (spec §F; the rule:
:mod:`phoneemu.phone.capf_outcome`) is counted on the summary's first line and in ``--json``, and its JUnit
case fails naming the CAPF rule and reason (was: booted, a passing case, exit 0 — a CI job green while
no LSC was installed). A phone that waits for its authentication string, or had nothing pending, passes."""

from __future__ import annotations

import types
import xml.etree.ElementTree as ET
from pathlib import Path

from phoneemu.commands.fleet import _write_junit
from phoneemu.fleet.metrics import BootRecord, FleetMetrics
from phoneemu.phone.boot import BootReport
from phoneemu.phone.events import Decision

CONFIG = Decision(rule="G.4-signed-by-itl-tftp", accepted=True, reason="config", file="SEP.cnf.xml.sgn")
REJECTED = Decision(rule="F.6-capf-rejected", accepted=False, file="", kind="capf",
                    reason="CAPF ended the session: bad authentication string (reason 7)")
INSTALLED = Decision(rule="F.6-lsc-installed", accepted=True, reason="issued", file="", kind="capf")
WAITING = Decision(rule="F.7-wait-auth-string", accepted=False, file="", kind="capf",
                   reason="CAPF by authentication string: no string entered on the phone")


def _rec(mac: str, *capf: Decision, ok: bool = True) -> BootRecord:
    deciding = CONFIG if ok else Decision(rule="H.3-config-transport-failed", accepted=False, reason="t/o",
                                          file="SEP.cnf.xml")
    report = BootReport(mac=mac, ok=ok, trust={}, config="accepted" if ok else "none", config_file=None,
                        encrypted=False, decisions=(*capf, deciding), deciding=deciding, statuses=(),
                        firmware="none", load=None, lsc="absent", locked_out=False, tvs_used=False,
                        timeline=(), duration_s=0.01)
    return BootRecord.of(report, latency_s=0.1, end_s=0.2)


def _records() -> list[BootRecord]:
    return [_rec("0A0000000001", INSTALLED), _rec("0A0000000002", REJECTED), _rec("0A0000000003", WAITING),
            _rec("0A0000000004"), _rec("0A0000000005", REJECTED, ok=False)]


def test_a_failed_capf_operation_is_counted_and_said_on_the_first_line() -> None:
    a, b = FleetMetrics(), FleetMetrics()
    for i, rec in enumerate(_records()):
        (a if i % 2 else b).add(rec)
    m = FleetMetrics.from_state(a.to_state()).merge(FleetMetrics.from_state(b.to_state()))  # over shards
    s = m.summary()
    assert (s["booted"], s["failed"]) == (4, 1)  # the outcomes as before: the configs were accepted
    assert (s["capf_failed"], s["booted_capf_failed"]) == (2, 1)
    assert m.render().splitlines()[0].startswith("5 phones: 4 booted (1 of them CAPF failed), 1 failed in ")


def test_a_record_says_capf_failed_only_when_it_did() -> None:
    said = {r.mac: r.as_dict().get("capf_failed") for r in _records()}
    assert said == {"0A0000000001": None, "0A0000000002": True, "0A0000000003": None, "0A0000000004": None,
                    "0A0000000005": True}
    back = BootRecord.from_dict(_records()[1].as_dict())  # a shard's pipe
    assert back.capf_failed and back.as_dict()["capf_failed"] is True


def test_a_booted_phone_whose_capf_failed_fails_its_junit_case(tmp_path: Path) -> None:
    records = _records()
    metrics = FleetMetrics()
    for rec in records:
        metrics.add(rec)
    result = types.SimpleNamespace(records=records, not_started=0, lost=[], metrics=metrics)
    path = tmp_path / "j.xml"
    _write_junit(path, result, target="127.0.0.1:6969", count=len(records))
    cases = {c.get("name"): c for c in ET.parse(path).getroot().iter("testcase")}
    failure = cases["0A0000000002"].find("failure")
    assert failure is not None
    assert failure.get("message") == f"CAPF operation failed (F.6-capf-rejected): {REJECTED.reason}"
    assert "capf_failed: yes" in (failure.text or "")
    for mac in ("0A0000000001", "0A0000000003", "0A0000000004"):  # installed, waiting, nothing asked
        assert cases[mac].find("failure") is None, mac
    failed = cases["0A0000000005"].find("failure")  # a failed boot stays as it was, its own failure
    assert failed is not None
    assert str(failed.get("message")).startswith("no-config (H.3-config-transport-failed)")
    assert ET.parse(path).getroot().get("failures") == "2"
