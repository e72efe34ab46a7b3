"""The CTL reset is a way out only for a phone that can take the reset CTL (the CTL's twin of 91d8ad2).

The reset CTL (``utils ctl reset localkey``, ``lab ctl-reset``) is signed by the publisher's CallManager key
(spec §G.7, §B.5), the refused CTL's SAST record that is one of its CCM+TFTP records too (§B.6, the lab's
CTL); a locked phone takes it only from a SAST record of a list it holds (§G.3 steps 2, 3). Was: ``lab
ctl-reset DIR localkey`` the first way out of ``G.3.4-tvs-server-untrusted`` after ``lab regenerate`` of
the CallManager, TVS and ITLRecovery certificates of a mixed-mode lab, and again after it was followed
(``lab ctl-reset`` itself warned "the CTL reset does not help").
"""

from __future__ import annotations

from collections import Counter

from phoneemu.formats import trustlist
from phoneemu.formats.trustlist import Role
from phoneemu.phone import ways_out as wo
from phoneemu.phone.ways_out import HeldLists
from tests.unit.test_rules import NOW, ident, install, new_store, tl

CTL_HELD = HeldLists(ctl=True, empty_itl=False, ctl_reset_untrusted=True)
ITL_ONLY = HeldLists(ctl=False, empty_itl=False, ctl_reset_untrusted=True)
SIGNER_RULES = ("G.3.4-tvs-server-untrusted", "G.3.4-tvs-unreachable", "G.3.4-tvs-unknown-signer",
                "G.3.4-tvs-wrong-role", "G.3.5-reject-unknown-signer")


def _ctl(recovery: str, cm: str, *, ts: int = NOW) -> bytes:
    """A lab-style CTL: SAST ITLRecovery and CallManager, the CallManager's CCM+TFTP record, CAPF."""
    rec, call = ident(recovery), ident(cm)
    return tl("CTL", rec, [rec.record(Role.SAST), call.record(Role.SAST), call.record(Role.CCM_TFTP),
                           ident("s44-capf").record(Role.CAPF)], ts=ts)


def _itl(recovery: str, cm: str, *, ts: int = NOW) -> bytes:
    rec, call = ident(recovery), ident(cm)
    return tl("ITL", rec, [rec.record(Role.SAST), call.record(Role.SAST), call.record(Role.CCM_TFTP)], ts=ts)


def _labs(ways: tuple[wo.WayOut, ...]) -> list[str]:
    return [w.lab for w in ways]


def _resets(ways: tuple[wo.WayOut, ...]) -> list[str]:
    return [w.lab for w in ways if "ctl-reset" in w.lab]


def test_the_reset_signer_is_the_refused_ctl_s_sast_callmanager() -> None:
    held = trustlist.parse(_ctl("s44-rec", "s44-cm"))
    # ITLRecovery (and TVS) regenerated, CallManager not: the reset CTL, signed by it, verifies
    assert wo.ctl_reset_signer_held(held, None, trustlist.parse(_ctl("s44-rec-2", "s44-cm", ts=NOW + 5)))
    # CallManager regenerated too: the held ITLRecovery SAST record is not the reset's signer
    new_cm = trustlist.parse(_ctl("s44-rec-2", "s44-cm-2", ts=NOW + 5))
    assert wo.ctl_reset_signer_held(held, None, new_cm) is False
    same_rec = trustlist.parse(_ctl("s44-rec", "s44-cm-2", ts=NOW + 5))
    assert wo.ctl_reset_signer_held(held, None, same_rec) is False
    # an ITL naming the new CallManager SAST is as good (§G.3 step 3)
    itl = trustlist.parse(_itl("s44-rec-2", "s44-cm-2"))
    assert wo.ctl_reset_signer_held(held, itl, new_cm) is True
    assert wo.ctl_reset_signer_held(None, itl, new_cm) is True
    # a non-secure CTL (its CCM+TFTP records empty) names no reset signer: not known
    rec, call = ident("s44-rec-2"), ident("s44-cm-2")
    blank = trustlist.parse(tl("CTL", rec, [rec.record(Role.SAST), call.record(Role.SAST),
                                            trustlist.empty_record(Role.CCM_TFTP, ip="127.0.0.1")]))
    assert wo.ctl_reset_signer_held(held, None, blank) is None


def test_after_boot_tells_it_from_the_refused_ctl() -> None:
    store = new_store()
    install(store, "CTL", _ctl("s44-rec", "s44-cm"))
    assert HeldLists.after_boot(store) == HeldLists(ctl=True, empty_itl=False)
    assert not HeldLists.after_boot(store, None, _ctl("s44-rec-2", "s44-cm", ts=NOW + 5)).ctl_reset_untrusted
    assert HeldLists.after_boot(store, None, _ctl("s44-rec-2", "s44-cm-2", ts=NOW + 5)) is \
        HeldLists.of(True, False, False, True)
    assert not HeldLists.after_boot(store, None, b"not a CTL").ctl_reset_untrusted  # not known: as before
    # the ITL's and the CTL's told apart
    both = HeldLists.after_boot(store, _itl("s44-rec-2", "s44-cm-2", ts=NOW + 5),
                                _ctl("s44-rec-2", "s44-cm-2", ts=NOW + 5))
    assert (both.reset_untrusted, both.ctl_reset_untrusted) == (True, True)


def test_no_ctl_reset_for_a_phone_that_cannot_take_it() -> None:
    for held in (CTL_HELD, ITL_ONLY):
        trusted = HeldLists.of(held.ctl, held.empty_itl)
        for rule in SIGNER_RULES:
            offered = wo.ways_out(rule, "CTL", held=trusted)
            ways = wo.ways_out(rule, "CTL", held=held)
            assert _resets(offered), (held, rule)
            assert not _resets(ways), (held, rule, _labs(ways))
            kept = tuple(w for w in offered if "ctl-reset" not in w.lab)
            assert ways[:len(kept)] == kept, (held, rule, _labs(ways))  # the others, in their order
            assert ways[-1].when == wo._DELETE.when, (held, rule, _labs(ways))
    # the walk's lockout: erasing the lists alone
    assert _labs(wo.ways_out("G.3.4-tvs-server-untrusted", "CTL", held=CTL_HELD)) == [
        "phoneemu phone erase --flash FLASH"]
    # an ITL and no CTL: the rollback on the cluster they left stays
    assert _labs(wo.ways_out("G.3.4-tvs-unknown-signer", "CTL", held=ITL_ONLY)) == [
        "phoneemu lab exchange OLD NEW && phoneemu lab restart-tvs OLD", "phoneemu lab rollback OLD on",
        "phoneemu phone erase --flash FLASH"]


def test_not_a_signer_rule_nor_another_kind_keeps_its_ways() -> None:
    for rule, kind in (("G.3-expired-signer", "CTL"), ("G.3.4-tvs-server-untrusted", "ITL"),
                       ("G.4-tvs-unreachable", "config")):
        same = HeldLists(ctl=True, empty_itl=False)
        assert wo.ways_out(rule, kind, held=CTL_HELD) == wo.ways_out(rule, kind, held=same), (rule, kind)


def test_held_json_and_fleet_groups() -> None:
    assert CTL_HELD.as_json() == {"ctl": True, "empty_itl": False, "ctl_reset_signer_held": False}
    assert HeldLists.from_json(CTL_HELD.as_json()) is HeldLists.shared(CTL_HELD)
    assert HeldLists.from_json({"ctl": True, "empty_itl": False}) is HeldLists.of(True, False)  # older
    rule = "G.3.4-tvs-server-untrusted"
    groups = {wo.ways_group(rule, "CTL", held=CTL_HELD): 3, wo.ways_group(rule, "CTL"): 2}
    doc = wo.ways_out_doc(groups)
    assert [e["phones"] for e in doc] == [3, 2]
    assert doc[0]["held"] == CTL_HELD.as_json() and "held" not in doc[1]
    assert not any("ctl-reset" in w["lab"] for w in doc[0]["ways"])
    assert any("ctl-reset" in w["lab"] for w in doc[1]["ways"])
    head = f"ways out of {rule} (CTL, holding a CTL, not the signer of the CTL reset; 3 phones locked out):"
    assert head in wo.ways_out_text(doc)


def test_a_group_keeps_the_flag_only_where_it_leaves_the_reset_out() -> None:
    """An ITL's lockout of a phone that also refused a CTL whose reset signer it lacks: not chosen by it."""
    rule = "G.3.4-tvs-server-untrusted"
    both = HeldLists.of(True, False, True, True)
    assert wo.ways_group(rule, "ITL", held=both)[3] is HeldLists.of(True, False, True)
    assert wo.ways_group(rule, "CTL", held=both)[3] is HeldLists.of(True, False, False, True)
    doc = wo.ways_out_doc(Counter([wo.ways_group(rule, "CTL", held=both),
                                   wo.ways_group(rule, "CTL", held=CTL_HELD)]))
    assert [(e["phones"], e["held"]) for e in doc] == [(2, CTL_HELD.as_json())]
    assert "not the signer of the ITL reset" not in wo.ways_out_text(doc)
