"""``replay --all``'s line per phone and "changed across the capture's boots" tell the boots' sequence
as it was, and an exit status 1 says why in one line (README: exit 1 unless every replayed boot
accepted a configuration — a phone whose last boot is ok may still fail it)."""

from __future__ import annotations

from typing import Any

from phoneemu.commands._replay_all import fleet_doc, fleet_text

OK = {"outcome": "ok", "rule": "G.4-signed-by-itl-tftp"}
LOCKED = {"outcome": "locked-out", "rule": "G.3.4-tvs-unreachable", "reason": "TVS unreachable",
          "kind": "ITL"}


def _rec(mac: str, *boots: dict[str, Any]) -> dict[str, Any]:
    full = [{"itl": "updated", "ctl": None, "config": "accepted", "server": "10.0.0.1", **b} for b in boots]
    return {"mac": mac, "profile": "cp-8861", "outcome": full[-1]["outcome"], "rule": full[-1]["rule"],
            "boots": full, "notes": []}


def test_a_phone_locked_out_between_two_good_boots() -> None:
    """tvs-outage: ok, locked-out while TVS is down, ok again. The line, the summary and the JSON's
    ``changed`` all say ok -> locked-out -> ok; the result counts both phones ok, and the exit status 1
    is explained by the boot that was not."""
    doc = fleet_doc([_rec("0A0000001201", OK, LOCKED, OK), _rec("0A0000001202", OK, LOCKED, OK)])
    assert doc["changed"] == {"ok -> locked-out -> ok": 2}
    assert doc["exit_status"] == 1
    text = fleet_text(doc, "replay")
    assert "  0A0000001201  3 boots  ok -> locked-out -> ok (G.4-signed-by-itl-tftp); ITL updated" in text
    assert "changed across the capture's boots: ok -> locked-out -> ok 2" in text
    lines = text.splitlines()
    assert lines[-2] == "result: 2 of 2 phones ended with a configuration accepted"
    assert lines[-1] == ("exit status 1: not every replayed boot accepted a configuration: 2 phones, 2 of "
                         "them ending ok (0A0000001201: boot 2 of 3 locked-out, G.3.4-tvs-unreachable)")
    assert doc["exit_why"] == lines[-1].removeprefix("exit status 1: ")


def test_runs_of_one_outcome_are_one_step_and_a_long_sequence_is_cut() -> None:
    doc = fleet_doc([_rec("0A0000000001", OK, OK, LOCKED, LOCKED),
                     _rec("0A0000000002", OK, LOCKED, OK, LOCKED, OK, LOCKED),
                     _rec("0A0000000003", LOCKED, LOCKED),
                     _rec("0A0000000004", OK)])
    assert doc["changed"] == {"ok -> locked-out": 1, "ok -> locked-out -> ... -> locked-out (5 changes)": 1}
    text = fleet_text(doc, "replay")
    assert "  0A0000000001  4 boots  ok -> locked-out (G.3.4-tvs-unreachable)" in text
    assert "  0A0000000002  6 boots  ok -> locked-out -> ... -> locked-out (5 changes) (G.3.4" in text
    assert "  0A0000000003  2 boots  locked-out (G.3.4-tvs-unreachable)" in text
    assert "  0A0000000004  1 boot  ok (G.4-signed-by-itl-tftp)" in text
    assert text.splitlines()[-1] == ("exit status 1: not every replayed boot accepted a configuration: 3 "
                                     "phones (first 0A0000000001: boot 3 of 4 locked-out, "
                                     "G.3.4-tvs-unreachable)")


def test_every_boot_ok_says_nothing_more_and_other_reasons_are_named() -> None:
    doc = fleet_doc([_rec("0A0000000001", OK, OK)])
    assert (doc["exit_status"], doc["exit_why"], doc["changed"]) == (0, None, {})
    assert fleet_text(doc, "replay").splitlines()[-1].startswith("result: 1 of 1 phone ended")
    differs = _rec("0A0000000002", {**OK, "sip": [{"differs": ["the phone used tcp, the rules give tls"],
                                                    "server": "10.0.0.1:5061", "transport": "tcp"}]})
    skipped = {"mac": "0A0000000003", "profile": "cp-8861", "skipped": "its downloads were not all kept"}
    doc = fleet_doc([_rec("0A0000000001", OK), differs, skipped])
    assert doc["exit_status"] == 1
    assert doc["exit_why"] == ("1 phone not replayed (0A0000000003); a SIP registration that differs from "
                               "the rules on 1 phone (first 0A0000000002: boot 1 of 1)")
