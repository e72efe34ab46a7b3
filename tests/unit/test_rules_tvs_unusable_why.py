"""A rejection because "TVS not usable" says why (was: ``signer unknown to the installed CTL/ITL and TVS
not usable`` alone, which a CI reader cannot act on): from the facts ``rules.tvs_usable`` checks — the
model has no TVS, the phone holds no config or its config names no TVS server, no ITL is installed, the
installed ITL has no TVS record (or a blank one: the rollback ITL, spec §B.7) or one without certificate
or key — after the old text (``TEXT: WHY``), for G.3.5, G.4, E.7.1 and F.1.

And ``G.2-first-ctl-tofu`` over the empty (rollback) ITL says that ITL is installed (was: "no CTL or ITL
installed", untrue there: the rule is right, the empty ITL accepts any new list, its text was not)."""

from __future__ import annotations

from phoneemu.crypto import certs
from phoneemu.errors import VerifyReason
from phoneemu.formats import trustlist
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.phone import rules
from phoneemu.phone.events import Decision
from phoneemu.phone.store import TrustStore
from tests.unit.test_rules import (
    CFG,
    NOW,
    P7940,
    P8861,
    ctl_a,
    expect,
    ident,
    install,
    itl_a,
    itl_b,
    new_store,
    sgn,
    tl,
    with_itl_and_config,
    xml,
)

G35 = "signer unknown to the installed CTL/ITL and TVS not usable: "
NO_CONFIG = "no config installed (the config names the TVS servers)"


def _foreign_itl(store: TrustStore) -> Decision:
    """An ITL signed by a signer no installed list knows (cluster C's recovery key)."""
    foreign = ident("recovery-c")
    d = rules.decide_trust_list(store, tl("ITL", foreign, [foreign.record(Role.SAST)]), kind="ITL",
                                profile=P8861, now=NOW)
    expect(d, "G.3.5-reject-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)
    return d


def _configured(store: TrustStore, signer: str, **config: object) -> TrustStore:
    d = rules.decide_config(store, CFG + ".sgn", sgn(ident(signer), xml(**config)), profile=P8861, now=NOW)
    assert d.accepted, d
    store.apply(d)
    return store


def test_g35_no_config_installed() -> None:
    s = new_store()
    install(s, "ITL", itl_a())
    assert _foreign_itl(s).reason == G35 + NO_CONFIG


def test_g35_the_config_names_no_tvs_server() -> None:
    s = new_store()
    install(s, "ITL", itl_a())
    _configured(s, "cm-a", tvs_servers=())
    assert _foreign_itl(s).reason == G35 + "the installed config names no TVS server"


def test_g35_no_itl_installed_and_every_fact_that_fails_is_said() -> None:
    s = new_store()
    install(s, "CTL", ctl_a())
    assert _foreign_itl(s).reason == G35 + f"{NO_CONFIG} and no ITL installed"
    _configured(s, "cm-a")  # CCM+TFTP in the CTL
    assert _foreign_itl(s).reason == G35 + "no ITL installed"


def test_g35_the_itl_has_no_tvs_record() -> None:
    s = new_store()
    install(s, "ITL", itl_b())  # SAST and CCM+TFTP only
    _configured(s, "cm-b")
    assert _foreign_itl(s).reason == G35 + "the installed ITL has no TVS record"


def test_g35_the_itl_tvs_record_has_no_certificate_or_key() -> None:
    full = ident("tvs-a").record(Role.TVS)
    names_only = TrustRecord(role=Role.TVS, subject=full.subject, issuer=full.issuer, serial=full.serial)
    rec = ident("recovery-a")
    s = new_store()
    recs = [rec.record(Role.SAST), ident("cm-a").record(Role.CCM_TFTP), names_only]
    install(s, "ITL", tl("ITL", rec, recs))
    _configured(s, "cm-a")
    assert _foreign_itl(s).reason == G35 + "the installed ITL's TVS record has no certificate or key"


def _rolled_back() -> TrustStore:
    """A booted phone (ITL of cluster A, its config naming TVS) that then took the rollback ITL."""
    s = with_itl_and_config()
    blanked = trustlist.rollback_records(trustlist.parse(itl_a()).records)
    install(s, "ITL", tl("ITL", ident("recovery-a"), list(blanked), ts=NOW + 5))
    assert s.itl_is_empty and s.ctl is None
    return s


def test_first_ctl_over_the_rollback_itl_says_that_itl_is_installed() -> None:
    s = _rolled_back()
    d = install(s, "CTL", ctl_a())
    expect(d, "G.2-first-ctl-tofu", True)
    assert d.reason == ("no CTL installed and the installed ITL is the empty (rollback) one: first CTL "
                        "accepted unchecked")
    d = rules.decide_trust_list(new_store(), ctl_a(), kind="CTL", profile=P8861, now=NOW)
    assert d.reason == "no CTL or ITL installed: first CTL accepted unchecked"  # no list at all: as before


def test_g35_over_the_rollback_itl_says_its_tvs_record_is_blank() -> None:
    s = _rolled_back()
    install(s, "CTL", ctl_a())  # with a CTL the empty ITL no longer accepts any ITL (§G.3.6)
    assert _foreign_itl(s).reason == G35 + ("the installed ITL is the empty (rollback) one: no TVS record a "
                                            "server can be checked against (spec §B.7)")


def test_g35_a_model_without_tvs_says_only_that() -> None:
    s = new_store(P7940)
    install(s, "CTL", ctl_a(), P7940)
    foreign = ident("recovery-c")
    d = rules.decide_trust_list(s, tl("CTL", foreign, [foreign.record(Role.SAST)]), kind="CTL",
                                profile=P7940, now=NOW)
    expect(d, "G.3.5-reject-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)
    assert d.reason == G35 + "cp-7940 has no TVS"


def test_g4_e71_and_f1_say_why_too() -> None:
    s = new_store()
    install(s, "ITL", itl_b())  # no TVS record, no config
    d = rules.decide_config(s, CFG + ".sgn", sgn(ident("cm-c")), profile=P8861, now=NOW)
    expect(d, "G.4-reject-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)
    assert d.reason == ("config signer is not a TFTP/CCM+TFTP certificate of the installed lists and TVS "
                        f"not usable: {NO_CONFIG} and the installed ITL has no TVS record")
    der = certs.cert_der(ident("app-c").cert)
    d = rules.decide_https_server(s, der, profile=P8861, now=NOW, server="https://app")
    expect(d, "E.7.1-https-not-trusted", False, VerifyReason.UNKNOWN_SIGNER)
    assert d.reason == ("HTTPS cert not in CTL/ITL and TVS not usable: "
                        f"{NO_CONFIG} and the installed ITL has no TVS record")
    d = rules.decide_capf_server(new_store(), der, profile=P8861, now=NOW, server="capf")
    expect(d, "F.1-capf-server-untrusted", False, VerifyReason.UNKNOWN_SIGNER)
    assert d.reason == ("CAPF certificate is not a CAPF record of the CTL/ITL and TVS not usable: "
                        f"{NO_CONFIG} and no ITL installed")


def test_g35_wrong_role_says_tvs_is_not_usable_and_why() -> None:
    """A signer the installed lists hold only in a non-SAST role is refused because TVS, which could vouch
    for it with SAST (spec §G.3.4), is not usable: said, with why (was: the role alone, no word of TVS, so
    ``predict`` could not tell a lockout resting on no config given)."""
    s = new_store()
    install(s, "ITL", itl_a())
    cm = ident("cm-a")  # CCM+TFTP in the ITL, not SAST
    d = rules.decide_trust_list(s, tl("ITL", cm, [cm.record(Role.SAST)]), kind="ITL", profile=P8861, now=NOW)
    expect(d, "G.3.5-reject-unknown-signer", False, VerifyReason.WRONG_ROLE)
    assert d.reason == ("signer is in the installed lists only with a non-SAST role and TVS not usable: "
                        f"{NO_CONFIG}")
