"""A fleet's lockouts with no documented way out are in its summary, with why (``phone.ways_out``).

Before: ``fleet boot``, ``predict --fleet-flash``/``--models``, ``replay --all`` and ``phone show
--fleet-flash`` summarised lockouts by rule with their ways out, and a group whose rule has none
(:data:`~phoneemu.phone.ways_out.NO_WAY_OUT`: a trust list that does not parse ...) was left out: 40
phones locked by a damaged ITL were not in the summary at all. Now each such (rule, kind) has its entry —
the phones, ``no_way_out`` (why) and no ways — and the line ``no documented way out of <rule> (<kind>;
N phones locked out): <why>``. ``no_way_out`` is also in every boot report's dict (``as_dict``), so
``replay --json`` and ``predict --json`` have it as ``boot --json`` does.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.commands._replay_all import _boot_record, fleet_doc, fleet_text, phone_record
from phoneemu.commands.predict import _fleet_doc, _fleet_text, _junit_case
from phoneemu.fleet.metrics import BootRecord, FleetMetrics
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone.boot import BootReport
from phoneemu.phone.events import Decision
from phoneemu.phone.ways_out import NO_WAY_OUT, ways_out_doc, ways_out_text
from phoneemu.scenario.predict import FleetPhone
from tests.helpers import boot_offline_into, run

MALFORMED = "G.3.1-malformed"
WHY = NO_WAY_OUT[("ITL", MALFORMED)]
UNREACHABLE = "G.3.4-tvs-unreachable"
NOW = 1_780_000_000


def _said(n: int) -> str:
    return f"no documented way out of {MALFORMED} (ITL; {n} phone{'s' if n != 1 else ''} locked out): {WHY}"


def _no_way_entry(doc: list[dict[str, Any]]) -> dict[str, Any]:
    (entry,) = [e for e in doc if e["rule"] == MALFORMED]
    return entry


def test_doc_has_an_entry_with_why_and_no_ways_and_text_says_it() -> None:
    doc = ways_out_doc({(UNREACHABLE, "ITL"): 2, (MALFORMED, "ITL"): 40, ("G.3.4-vouched-by-tvs", "ITL"): 1})
    assert [(e["rule"], e["phones"]) for e in doc] == [(MALFORMED, 40), (UNREACHABLE, 2)]  # most first
    assert doc[0] == {"rule": MALFORMED, "kind": "ITL", "phones": 40, "ways": [], "reason_code": None,
                      "no_way_out": WHY}
    assert doc[1]["no_way_out"] is None and doc[1]["ways"]  # a group with ways: as before, plus the field
    text = ways_out_text(doc)
    assert text[0] == _said(40) and text[1] == f"ways out of {UNREACHABLE} (ITL; 2 phones locked out):"
    assert ways_out_text(ways_out_doc({(MALFORMED, "ITL", None): 1})) == [_said(1)]  # ways_key's groups
    # a document without the field (an older phoneemu's) is read as before
    assert ways_out_text([{k: v for k, v in doc[1].items() if k != "no_way_out"}])[0] == text[1]


def _report(rule: str, *, locked: bool = True) -> BootReport:
    """A boot whose ITL was refused by ``rule`` (a lockout unless ``locked`` is False)."""
    d = Decision(rule=rule, accepted=False, reason="does not parse", file="ITLFile.tlv", kind="ITL")
    return BootReport(mac="0A0000000001", ok=False, trust={"ITL": "rejected"}, config="none",
                      config_file=None, encrypted=False, decisions=(d,), deciding=d, statuses=(),
                      firmware="none", load=None, lsc="absent", locked_out=locked, tvs_used=False,
                      timeline=(), duration_s=0.01)


def test_every_boot_report_dict_says_why_there_is_no_way_out() -> None:
    """``as_dict``, beside ``ways_out`` (last, where ``boot --json`` had it): ``replay --json`` and
    ``predict --json`` have it too."""
    doc = _report(MALFORMED).as_dict()
    assert doc["ways_out"] == [] and doc["no_way_out"] == WHY
    assert list(doc)[-2:] == ["ways_out", "no_way_out"]
    assert _report(UNREACHABLE).as_dict()["no_way_out"] is None  # it has ways out
    assert _report(MALFORMED, locked=False).as_dict()["no_way_out"] is None  # no lockout


def test_fleet_boot_summary_and_text_have_the_group() -> None:
    shard = FleetMetrics()
    for i in range(3):
        shard.add(BootRecord(mac=f"0A{i:010X}", outcome="locked-out", rule=MALFORMED, latency_s=0.1,
                             end_s=0.2, reason="does not parse", kind="ITL"))
    m = FleetMetrics.merged([FleetMetrics.from_state(shard.to_state())])  # across a shard's pipe
    entry = _no_way_entry(m.summary()["ways_out"])
    assert (entry["phones"], entry["ways"], entry["no_way_out"]) == (3, [], WHY)
    assert _said(3) in m.render().splitlines()


def test_predict_fleet_summary_and_junit_have_it() -> None:
    deciding = {"rule": MALFORMED, "kind": "ITL", "reason_code": None, "reason": "does not parse",
                "file": "ITLFile.tlv"}
    phones = [FleetPhone(entry=f"0A000000000{i}", mac=f"0A000000000{i}", profile="cp-8861",
                         outcome="locked out", rule=MALFORMED, detail={"deciding": deciding}) for i in (1, 2)]
    args = SimpleNamespace(fleet_flash=Path("/tmp/fleet"), models=None, files=[Path("ITLFile.tlv")],
                           tvs_cert=[], tvs_reachable=False)
    doc = _fleet_doc(args, NOW, phones, None, source="/tmp/fleet")
    assert _no_way_entry(doc["ways_out"])["no_way_out"] == WHY
    assert _said(2) in _fleet_text(doc).splitlines()
    case = _junit_case("0A0000000001", "locked out", deciding, {})
    assert f"no documented way out: {WHY}" in case.failure[1]


def test_replay_all_summary_has_it() -> None:
    boot = SimpleNamespace(start=0.0, server="127.0.0.1")
    result = SimpleNamespace(report=_report(MALFORMED), boot=boot, not_captured=(), sip=())
    rec = phone_record(SimpleNamespace(mac="0A0000000001", profile="cp-8861", skipped=None, notes=(),
                                       results=[_boot_record(result)]))
    doc = fleet_doc([rec])
    assert _no_way_entry(doc["ways_out"])["no_way_out"] == WHY
    assert _said(1) in fleet_text(doc, "head").splitlines()


def test_phone_show_fleet_flash_says_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Three phones take the lab's ITL; it is damaged (one byte flipped), two boot again and lock out."""
    lab = LabCluster.init(tmp_path / "lab", seed=44, key_spec="rsa1024", now=NOW, name="c")
    macs = [f"0A00000000D{i}" for i in range(1, 4)]
    lab.add_phones(macs, now=NOW)
    folder = tmp_path / "fleet"
    assert all(r.ok for r in run(boot_offline_into(folder, lab, macs, now=NOW)))
    lab.tamper("ITLFile.tlv", offset=0, now=NOW)
    assert all(r.deciding.rule == MALFORMED and r.locked_out
               for r in run(boot_offline_into(folder, lab, macs[:2], now=NOW)))
    assert main(["phone", "show", "--fleet-flash", str(folder)]) == 0
    assert _said(2) in capsys.readouterr().out.splitlines()
    assert main(["phone", "show", "--fleet-flash", str(folder), "--json"]) == 0
    entry = _no_way_entry(json.loads(capsys.readouterr().out)["ways_out"])
    assert (entry["kind"], entry["phones"], entry["ways"], entry["no_way_out"]) == ("ITL", 2, [], WHY)
