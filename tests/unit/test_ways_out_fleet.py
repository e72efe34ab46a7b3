"""A fleet's ways out are chosen with the deciding reason code (``phone.ways_out.ways_key``), as ``boot``
and ``predict`` choose them: phones locked out by a TVS QUERY too large to send (reason code ``too-large``
under a ``-tvs-unreachable`` rule) are their own group in ``fleet boot``'s summary, ``--json`` and
``--junit`` and in ``replay --all``'s, told to shorten the names, not to bring TVS back. Was: grouped by
(rule, kind) only, every such phone was told to bring TVS back."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from phoneemu.commands._replay_all import _boot_record, fleet_doc, fleet_text, phone_record
from phoneemu.commands.fleet import _write_junit
from phoneemu.errors import VerifyReason
from phoneemu.fleet.metrics import BootRecord, FleetMetrics
from phoneemu.phone.boot import BootReport
from phoneemu.phone.events import Decision
from phoneemu.phone.ways_out import ways_key, ways_out_doc

RULE = "G.3.4-tvs-unreachable"
BRING_BACK = "bring TVS back"


def _locked(i: int, code: str | None) -> BootRecord:
    return BootRecord(mac=f"0A{i:010X}", outcome="locked-out", rule=RULE, latency_s=0.1, end_s=0.2,
                      reason="TVS QUERY too large" if code == "too-large" else "TVS unreachable", kind="ITL",
                      reason_code=code)


def _actions(entry: dict[str, Any]) -> list[str]:
    return [w["action"] for w in entry["ways"]]


def test_a_code_is_a_group_only_where_it_chooses_other_ways() -> None:
    assert ways_key(RULE, "ITL", VerifyReason.TOO_LARGE) == (RULE, "ITL", "too-large")
    assert ways_key(RULE, "ITL", "tvs-unreachable") == ways_key(RULE, "ITL") == (RULE, "ITL", None)
    assert ways_key("G.3.1-oversize", "ITL", "too-large") == ("G.3.1-oversize", "ITL", None)  # same ways
    # (rule, kind) keys, as predict and phone show give them: as before, no reason code
    (entry,) = ways_out_doc({(RULE, "ITL"): 2})
    assert entry["reason_code"] is None and _actions(entry)[0].startswith(BRING_BACK)


def test_fleet_summary_and_json_say_the_too_large_ways(tmp_path: Path) -> None:
    """Two groups under one rule: the phones whose QUERY was too large, shorten; the others, TVS back.
    The code crosses a shard's pipe (record and metrics state) and is in the record's JSON."""
    shard = FleetMetrics()
    for i in range(3):
        shard.add(BootRecord.from_dict(_locked(i, "too-large").as_dict()))
    for i in range(3, 5):
        shard.add(_locked(i, "tvs-unreachable"))
    m = FleetMetrics.merged([FleetMetrics.from_state(shard.to_state())])
    large, unreachable = m.summary()["ways_out"]
    assert (large["rule"], large["kind"], large["phones"]) == (RULE, "ITL", 3)
    assert large["reason_code"] == "too-large"
    assert "shorten" in _actions(large)[0] and not any(a.startswith(BRING_BACK) for a in _actions(large))
    assert (unreachable["phones"], unreachable["reason_code"]) == (2, None)
    assert _actions(unreachable)[0].startswith(BRING_BACK)
    text = m.render()
    head = f"ways out of {RULE} (ITL, reason too-large; 3 phones locked out):"
    assert head in text and f"ways out of {RULE} (ITL; 2 phones locked out):" in text
    too_large_part = text.split(head)[1].split("ways out of")[0]
    assert "shorten" in too_large_part and BRING_BACK not in too_large_part
    assert _locked(0, "too-large").as_dict()["reason_code"] == "too-large"


def _report(code: VerifyReason | None) -> BootReport:
    """A boot locked out by ``RULE`` on the ITL, its deciding reason code ``code``."""
    d = Decision(rule=RULE, accepted=False, reason="TVS QUERY too large", file="ITLFile.tlv", kind="ITL",
                 reason_code=code)
    return BootReport(mac="0A0000000001", ok=False, trust={"ITL": "rejected"}, config="none",
                      config_file=None, encrypted=False, decisions=(d,), deciding=d, statuses=(),
                      firmware="none", load=None, lsc="absent", locked_out=True, tvs_used=False,
                      timeline=(), duration_s=0.01)


def test_boot_record_keeps_the_deciding_reason_code_of_a_failed_boot() -> None:
    rec = BootRecord.of(_report(VerifyReason.TOO_LARGE), latency_s=0.1, end_s=0.2)
    assert rec.reason_code == "too-large" and BootRecord.from_dict(rec.as_dict()) == rec


def test_fleet_junit_says_the_too_large_ways(tmp_path: Path) -> None:
    result = SimpleNamespace(records=[_locked(1, "too-large")], not_started=0, lost=[],
                             metrics=SimpleNamespace(wall_s=0.2))
    out = tmp_path / "j.xml"
    _write_junit(out, result, target="127.0.0.1", count=1)
    text = out.read_text()
    assert "shorten" in text and BRING_BACK not in text


def _replayed(mac: str, code: VerifyReason) -> dict[str, Any]:
    """A phone's ``replay --all`` record: one boot, reduced as ``run_all`` reduces it."""
    boot = SimpleNamespace(start=0.0, server="127.0.0.1")
    result = SimpleNamespace(report=_report(code), boot=boot, not_captured=(), sip=())
    return phone_record(SimpleNamespace(mac=mac, profile="cp-8861", skipped=None, notes=(),
                                        results=[_boot_record(result)]))


def test_replay_all_summary_says_the_too_large_ways() -> None:
    doc = fleet_doc([_replayed("0A0000000001", VerifyReason.TOO_LARGE),
                     _replayed("0A0000000002", VerifyReason.TVS_UNREACHABLE)])
    assert doc["records"][0]["boots"][0]["reason_code"] == "too-large"
    by_code = {e["reason_code"]: e for e in doc["ways_out"]}
    assert set(by_code) == {"too-large", None}
    assert "shorten" in _actions(by_code["too-large"])[0]
    assert not any(a.startswith(BRING_BACK) for a in _actions(by_code["too-large"]))
    assert _actions(by_code[None])[0].startswith(BRING_BACK)
    assert f"ways out of {RULE} (ITL, reason too-large; 1 phone locked out):" in fleet_text(doc, "head")


def test_fleet_junit_says_why_a_lockout_has_no_way_out(tmp_path: Path) -> None:
    """A phone locked out by a damaged ITL (G.3.1-malformed: no documented way out) ends its JUnit case
    saying so, as boot does (was: nothing after the record)."""
    rec = BootRecord(mac="0A0000000009", outcome="locked-out", rule="G.3.1-malformed", latency_s=0.1,
                     end_s=0.2, reason="ITL does not parse", kind="ITL")
    result = SimpleNamespace(records=[rec], not_started=0, lost=[], metrics=SimpleNamespace(wall_s=0.2))
    out = tmp_path / "j.xml"
    _write_junit(out, result, target="127.0.0.1", count=1)
    assert "no documented way out: " in out.read_text()
