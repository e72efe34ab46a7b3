"""The bulk ITL reset is a way out only for a phone that can take the reset ITL (walk s41).

The reset ITL is signed by the cluster's CallManager key (spec §G.7), the refused ITL's CCM+TFTP record; a
locked phone takes it only from a SAST record of a list it holds (§G.3 steps 2, 3: its TVS did not vouch).
Was: ``lab itl-reset DIR localkey`` the first way out of ``G.3.4-tvs-server-untrusted`` after ``lab
regenerate`` of the CallManager, TVS and ITLRecovery certificates, and again after it was followed (the
lab's own warning said "the bulk ITL reset does not help"); after a migration it was offered on the new
cluster, whose CallManager key the phone's ITL never held ("their own cluster").

Also here: the no-flash text of ``phone erase`` for phones that start each run holding ``--installed-itl``
(was "each run starts from an empty one").
"""

from __future__ import annotations

from collections import Counter

from phoneemu.formats import trustlist
from phoneemu.formats.trustlist import Role
from phoneemu.phone import ways_out as wo
from phoneemu.phone.ways_out import HeldLists
from tests.unit.test_rules import NOW, ident, install, new_store, tl

UNTRUSTED = HeldLists(ctl=False, empty_itl=False, reset_untrusted=True)
SIGNER_RULES = ("G.3.4-tvs-server-untrusted", "G.3.4-tvs-unreachable", "G.3.4-tvs-unknown-signer",
                "G.3.4-tvs-wrong-role", "G.3.5-reject-unknown-signer")


def _itl(recovery: str, cm: str, *, ts: int = NOW) -> bytes:
    """A lab-style ITL: ITLRecovery and CallManager SAST records, the CallManager's CCM+TFTP record too."""
    rec, call = ident(recovery), ident(cm)
    return tl("ITL", rec, [rec.record(Role.SAST), call.record(Role.SAST), call.record(Role.CCM_TFTP)], ts=ts)


def _labs(ways: tuple[wo.WayOut, ...]) -> list[str]:
    return [w.lab for w in ways]


def test_the_reset_signer_is_held_where_a_sast_record_names_the_refused_itl_s_callmanager() -> None:
    held = trustlist.parse(_itl("s41-rec", "s41-cm"))
    # ITLRecovery and TVS regenerated, CallManager not: the reset ITL (signed by it) verifies
    same_cm = trustlist.parse(_itl("s41-rec-2", "s41-cm", ts=NOW + 5))
    assert wo.itl_reset_signer_held(None, held, same_cm) is True
    # CallManager regenerated too (or another cluster's): the reset ITL's signer is no record they hold
    new_cm = trustlist.parse(_itl("s41-rec-2", "s41-cm-2", ts=NOW + 5))
    assert wo.itl_reset_signer_held(None, held, new_cm) is False
    # a CTL naming it SAST is as good (spec §G.3 step 2)
    ctl = trustlist.parse(tl("CTL", ident("s41-cm-2"), [ident("s41-cm-2").record(Role.SAST)]))
    assert wo.itl_reset_signer_held(ctl, held, new_cm) is True
    # a CCM+TFTP record alone (no SAST) does not sign a trust list
    only_tftp = trustlist.parse(tl("ITL", ident("s41-rec"), [ident("s41-rec").record(Role.SAST),
                                                            ident("s41-cm-2").record(Role.CCM_TFTP)]))
    assert wo.itl_reset_signer_held(None, only_tftp, new_cm) is False
    # a refused ITL naming no CCM+TFTP record: not known
    bare = trustlist.parse(tl("ITL", ident("s41-rec-2"), [ident("s41-rec-2").record(Role.SAST)]))
    assert wo.itl_reset_signer_held(None, held, bare) is None


def test_after_boot_tells_it_from_the_refused_itl() -> None:
    store = new_store()
    install(store, "ITL", _itl("s41-rec", "s41-cm"))
    assert HeldLists.after_boot(store) == HeldLists(ctl=False, empty_itl=False)
    assert HeldLists.after_boot(store, _itl("s41-rec-2", "s41-cm", ts=NOW + 5)).reset_untrusted is False
    assert HeldLists.after_boot(store, _itl("s41-rec-2", "s41-cm-2", ts=NOW + 5)) == UNTRUSTED
    assert HeldLists.after_boot(store, b"not an ITL").reset_untrusted is False  # not known: as before
    assert HeldLists.after_boot(store, _itl("s41-rec-2", "s41-cm-2")) is HeldLists.of(False, False, True)


def test_no_bulk_itl_reset_for_a_phone_that_cannot_take_it() -> None:
    for rule in SIGNER_RULES:
        table = wo.ways_out(rule, "ITL")
        ways = wo.ways_out(rule, "ITL", held=UNTRUSTED)
        assert any("itl-reset" in w.lab for w in table), rule
        assert not any("itl-reset" in w.lab for w in ways), (rule, _labs(ways))
        kept = tuple(w for w in table if "itl-reset" not in w.lab)
        assert ways[:len(kept)] == kept, (rule, _labs(ways))  # the others, in their order
        assert ways[-1].when == wo._DELETE.when, (rule, _labs(ways))  # erasing the lists, the last resort
    # item 1's rule: the rollback (a migration's) and erasing the lists
    assert _labs(wo.ways_out("G.3.4-tvs-server-untrusted", "ITL", held=UNTRUSTED)) == [
        "phoneemu lab rollback OLD on", "phoneemu phone erase --flash FLASH"]
    # item 2's (moved to B): no "their own cluster" reset
    assert _labs(wo.ways_out("G.3.4-tvs-unknown-signer", "ITL", held=UNTRUSTED)) == [
        "phoneemu lab exchange OLD NEW && phoneemu lab restart-tvs OLD", "phoneemu lab rollback OLD on",
        "phoneemu phone erase --flash FLASH"]


def test_not_a_signer_rule_nor_another_kind_keeps_its_ways() -> None:
    """An expired ITL signer's reset, or a config's, is not chosen by the refused ITL."""
    for rule, kind in (("G.3-expired-signer", "ITL"), ("G.4-tvs-unreachable", "config"),
                       ("G.3.4-tvs-server-untrusted", "CTL")):
        same = HeldLists(ctl=False, empty_itl=False)
        assert wo.ways_out(rule, kind, held=UNTRUSTED) == wo.ways_out(rule, kind, held=same), (rule, kind)


def test_with_a_ctl_too() -> None:
    """Holding a CTL (its ways without the rollback) and not the reset's signer: no reset either."""
    held = HeldLists(ctl=True, empty_itl=False, reset_untrusted=True)
    assert _labs(wo.ways_out("G.3.4-tvs-server-untrusted", "ITL", held=held)) == [
        "phoneemu phone erase --flash FLASH"]


def test_held_json_and_fleet_groups() -> None:
    assert UNTRUSTED.as_json() == {"ctl": False, "empty_itl": False, "reset_signer_held": False}
    assert HeldLists(ctl=True, empty_itl=False).as_json() == {"ctl": True, "empty_itl": False}  # as before
    assert HeldLists.from_json(UNTRUSTED.as_json()) is HeldLists.shared(UNTRUSTED)
    assert HeldLists.from_json({"ctl": False, "empty_itl": False}) == HeldLists(ctl=False, empty_itl=False)
    rule = "G.3.4-tvs-server-untrusted"
    groups = {wo.ways_group(rule, "ITL", held=UNTRUSTED): 3, wo.ways_group(rule, "ITL"): 2}
    doc = wo.ways_out_doc(groups)
    assert [e["phones"] for e in doc] == [3, 2]
    assert doc[0]["held"] == UNTRUSTED.as_json() and "held" not in doc[1]
    assert not any("itl-reset" in w["lab"] for w in doc[0]["ways"])
    assert any("itl-reset" in w["lab"] for w in doc[1]["ways"])
    text = wo.ways_out_text(doc)
    head = f"ways out of {rule} (ITL, holding no CTL, not the signer of the ITL reset; 3 phones locked out):"
    assert head in text, text
    # a rule whose ways it does not choose: one group
    assert wo.ways_group("G.3-expired-signer", "ITL", held=UNTRUSTED)[3] is None


def test_a_group_keeps_the_flag_only_where_it_leaves_the_reset_out() -> None:
    """A CTL refused in the same boot as an ITL whose reset signer the phone lacks: its ways are not chosen by
    it, so phones with and without it are one group, not said "not the signer of the ITL reset" (was: two
    groups of the same ways, ``reset_signer_held: false`` in the CTL's)."""
    rule = "G.3.4-tvs-unreachable"
    itl_only = HeldLists.of(False, False)
    assert wo.ways_group(rule, "CTL", held=UNTRUSTED) == wo.ways_group(rule, "CTL", held=itl_only)
    assert wo.ways_group(rule, "CTL", held=UNTRUSTED)[3] is itl_only  # a CTL's ways chosen by the ITL held
    doc = wo.ways_out_doc(Counter([wo.ways_group(rule, "CTL", held=UNTRUSTED),
                                   wo.ways_group(rule, "CTL", held=itl_only)]))
    assert [(e["phones"], e["held"]) for e in doc] == [(2, {"ctl": False, "empty_itl": False})]
    assert "not the signer" not in wo.ways_out_text(doc)
    assert wo.ways_group(rule, "ITL", held=UNTRUSTED)[3] is HeldLists.shared(UNTRUSTED)  # the ITL's: kept


def test_erase_without_a_flash_says_what_the_phones_start_holding() -> None:
    """Item 3: ``fleet boot --installed-itl F`` without ``--flash``: the phones do not start empty."""
    rule = "G.3.4-tvs-server-untrusted"
    plain = {wo.FLASH_NOT_KEPT: "phoneemu fleet boot"}
    lines = wo.way_out_lines(rule, "ITL", fill=plain, fleet=True)
    assert any("nothing to erase: their flashes were not kept (no --flash: each run starts from an empty one;"
               in line for line in lines), lines
    given = "--installed-itl B/tftp/ITLFile.tlv --installed-config-dir B/tftp/"
    lines = wo.way_out_lines(rule, "ITL", fill={**plain, wo.FLASH_STARTS_HOLDING: given}, fleet=True)
    said = [line for line in lines if "nothing to erase" in line]
    assert said == [f"    lab: nothing to erase: their flashes were not kept (no --flash: each run starts "
                    f"holding what {given} give; a run without them starts them erased; phoneemu fleet boot "
                    "--flash FOLDER keeps them)   rehearse: phoneemu run "
                    "scenarios/migration-manual-itl-delete.yaml"], lines
    assert "empty one" not in "\n".join(lines)
