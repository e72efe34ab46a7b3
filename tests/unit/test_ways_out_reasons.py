"""The ways out say what helps in the situation the decision tells (``phoneemu.phone.ways_out``).

Before: a QUERY too large to send (reason code ``too-large`` under ``G.3.4-`` / ``G.4-tvs-unreachable``,
the boot's ``decide_with_tvs``) was told to bring TVS back, which is never asked; the ways through the
rollback (empty) ITL did not say that it does not help a phone holding a CTL (spec §G.3 note, step 2);
and "bring TVS back" under a refused config said the phones would take "the new trust list".
"""

from __future__ import annotations

import shlex

from phoneemu.cli import build_parser
from phoneemu.errors import VerifyReason
from phoneemu.formats import trustlist
from phoneemu.phone import rules
from phoneemu.phone.ways_out import WAYS_BY_KIND, WayOut, way_out_lines, ways_out, ways_out_json
from tests.unit.test_rules import CFG, NOW, P8861, ctl_a, ident, install, itl_a, itl_b, new_store, tl, xml

TOO_LARGE = VerifyReason.TOO_LARGE


def _scenarios(ways: tuple[WayOut, ...]) -> list[str]:
    return [w.scenario for w in ways]


def test_a_query_too_large_to_send_is_not_told_to_bring_tvs_back() -> None:
    """Its own way first (what is too long: the signer's names or the profile's model name), then the
    rule's ways that need no TVS answer; JSON's code (``"too-large"``) and the enum alike."""
    for code in (TOO_LARGE, "too-large"):
        itl = ways_out("G.3.4-tvs-unreachable", "ITL", code)
        assert _scenarios(itl) == ["", "bulk-itl-reset-localkey", "rollback-empty-itl-escape",
                                   "migration-manual-itl-delete"]
        first = itl[0]
        assert "too-large" in first.when and "subject and issuer" in first.action
        assert "model name" in first.action and "bringing it back does not help" in first.action
        assert _scenarios(ways_out("G.4-tvs-unreachable", "config", code)) == ["", "bulk-itl-reset-localkey"]
        assert _scenarios(ways_out("G.3.4-tvs-unreachable", "CTL", code)) == \
            ["", "ctl-reset-locked-phones", "migration-manual-itl-delete"]
    assert not any("bring TVS back" in w.action or "bulk certificate export" in w.action
                   for w in ways_out("G.3.4-tvs-unreachable", "ITL", TOO_LARGE))
    # another code, no code, or another rule's too-large (a trust list above the limit): as before
    assert ways_out("G.3.4-tvs-unreachable", "ITL", VerifyReason.TVS_UNREACHABLE) == \
        ways_out("G.3.4-tvs-unreachable", "ITL") == WAYS_BY_KIND["ITL"]["G.3.4-tvs-unreachable"]
    assert ways_out("G.3.1-oversize", "ITL", TOO_LARGE) == WAYS_BY_KIND["ITL"]["G.3.1-oversize"]


def test_the_too_large_way_reads_and_runs_as_printed() -> None:
    """No catalogue scenario rehearses it: its line says none; its command is one the CLI takes."""
    lines = way_out_lines("G.3.4-tvs-unreachable", "ITL", reason_code=TOO_LARGE)
    assert lines[1] == "    lab: phoneemu inspect FILE"
    assert "rehearse:" in lines[3]
    doc = ways_out_json("G.3.4-tvs-unreachable", "ITL", reason_code="too-large", fleet=True)
    assert doc[0]["lab"] == "phoneemu inspect FILE" and doc[0]["scenario"] == ""
    build_parser().parse_args(shlex.split(doc[0]["lab"].replace("FILE", "/tmp/ITLFile.tlv"))[1:])


def test_the_ways_through_the_rollback_itl_say_a_ctl_is_not_blanked() -> None:
    """§G.3 note and step 2: a phone holding a CTL and the rollback ITL still checks a new ITL and its
    configs (no ``G.3.6`` / ``G.4-empty-itl-*``); every way that serves the rollback ITL says so."""
    s = new_store()
    install(s, "CTL", ctl_a())
    install(s, "ITL", itl_a())
    install(s, "ITL", tl("ITL", ident("recovery-a"),
                         list(trustlist.rollback_records(trustlist.parse(itl_a()).records)), ts=NOW + 5))
    assert s.itl_is_empty and s.ctl is not None
    new_itl = rules.decide_trust_list(s, itl_b(), kind="ITL", profile=P8861, now=NOW)
    assert not new_itl.accepted and new_itl.rule != "G.3.6-empty-itl-accepts-any", new_itl
    assert rules.decide_config(s, CFG, xml(), profile=P8861, now=NOW).rule == "G.4-unsigned-rejected"
    through_rollback = {w for table in WAYS_BY_KIND.values() for ways in table.values() for w in ways
                        if " rollback " in f" {w.lab} "}
    # the old cluster's (and its wording under the own-cluster TVS rules), the central TFTP's, before a
    # pre-8.0 move
    assert len(through_rollback) == 4
    for way in through_rollback:
        assert "not on phones holding a CTL" in way.action, way


def test_bring_tvs_back_under_a_refused_config_names_no_trust_list() -> None:
    for kind, rule in (("config", "G.4-tvs-unreachable"), ("ITL", "G.3.4-tvs-unreachable")):
        action = ways_out(rule, kind)[0].action
        assert action.startswith("bring TVS back") and "trust list" not in action
        assert "take the file they refused at their next reset" in action
