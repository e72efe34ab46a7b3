"""Conformance audit of phoneemu.phone.rules against spec §G: the cases the other rule tests leave out.

Role matrix (§G.3, §G.4, §G.5, §B.3): every role code, in a CTL and in an ITL, as the signer of a
config, of a static file and of a trust list; a certificate listed twice with different roles; TVS
answers with every non-signing role (§E.7.4); a TVS answer's cache lifetime for a config signer
(§E.4 TTL, §H.2); a VERIFY answer handed in directly never makes a file signer (§E.7.2).
"""

from __future__ import annotations

import pytest

from phoneemu.crypto import certs
from phoneemu.errors import VerifyReason
from phoneemu.formats import signed
from phoneemu.formats.trustlist import Role
from phoneemu.phone import rules
from phoneemu.phone.events import Decision
from phoneemu.phone.store import TrustStore, TvsAnswer
from tests.unit.test_rules import (
    CFG,
    NOW,
    P8861,
    Ident,
    expect,
    ident,
    install,
    itl_b,
    new_store,
    sgn,
    tl,
    with_itl_and_config,
)

#: every role code of §B.3 plus an unknown one (6); only TFTP (3) and CCM+TFTP (2) sign files (§G.5)
ALL_ROLES = (Role.SAST, Role.CCM, Role.CCM_TFTP, Role.TFTP, Role.CAPF, 5, 6, Role.APP_SERVER, Role.TVS)
FILE_SIGNING = frozenset({Role.TFTP, Role.CCM_TFTP})
STATIC = "RingList.xml.sgn"


def _store_listing(kind: str, who: Ident, role: int) -> TrustStore:
    """A phone holding only a ``kind`` list (signed by its SAST recovery-c) listing ``who`` as ``role``."""
    rec = ident("recovery-c")
    s = new_store()
    install(s, kind, tl(kind, rec, [rec.record(Role.SAST), who.record(role)]))
    return s


def _static(who: Ident) -> bytes:
    return signed.build(body=b"<CiscoIPPhoneRingList/>", filename=STATIC, signer=who.signer, timestamp=NOW)


@pytest.mark.parametrize("kind", ["CTL", "ITL"])
@pytest.mark.parametrize("role", ALL_ROLES)
def test_only_tftp_and_ccm_tftp_records_sign_configs_and_static_files(kind: str, role: int) -> None:
    """§G.4 (a)/(b), §G.5: a config or a static file is accepted from a TFTP / CCM+TFTP record of the
    CTL or ITL only; every other role (SAST, CCM, CAPF, SRST, APP-SERVER, TVS, unknown) is WRONG_ROLE."""
    who = ident(f"conf-signer-{int(role)}")
    s = _store_listing(kind, who, role)
    cfg = rules.decide_config(s, CFG + ".sgn", sgn(who), profile=P8861, now=NOW)
    static = rules.decide_static_file(s, STATIC, _static(who), profile=P8861, now=NOW)
    if role in FILE_SIGNING:
        rule = "G.4-signed-by-ctl-tftp" if kind == "CTL" else "G.4-signed-by-itl-tftp"
        expect(cfg, rule, True)
        expect(static, rule, True)
    else:
        expect(cfg, "G.4-reject-unknown-signer", False, VerifyReason.WRONG_ROLE)
        expect(static, "G.4-reject-unknown-signer", False, VerifyReason.WRONG_ROLE)


@pytest.mark.parametrize("kind", ["CTL", "ITL"])
@pytest.mark.parametrize("role", ALL_ROLES)
def test_only_sast_records_sign_trust_lists(kind: str, role: int) -> None:
    """§G.3.2/§G.3.3, §G.5: a new CTL/ITL is accepted from a SAST record of the installed lists only;
    CCM+TFTP, TFTP, CAPF, TVS... records are WRONG_ROLE (TVS not usable here: no TVS record)."""
    who = ident(f"tl-signer-{int(role)}")
    s = _store_listing(kind, who, role)
    new = tl(kind, who, [who.record(Role.SAST)], ts=NOW + 1)
    d = rules.decide_trust_list(s, new, kind=kind, profile=P8861, now=NOW)  # type: ignore[arg-type]
    if role == Role.SAST:
        expect(d, "G.3.2-signed-by-ctl" if kind == "CTL" else "G.3.3-signed-by-itl-sast", True)
    else:
        expect(d, "G.3.5-reject-unknown-signer", False, VerifyReason.WRONG_ROLE)
        s.apply(d)
        assert s.locked and s.trust_list(kind) is not None and s.trust_list(kind).raw != new  # type: ignore[union-attr]


def test_a_certificate_listed_twice_with_different_roles_signs_what_either_role_may() -> None:
    """§B.3 "the same certificate may appear in several records with different roles": the record with
    the role the artefact needs is found whatever the order; a listing in a signing role for one
    artefact never lends that role to another (CCM + SAST does not sign a config)."""
    rec, cm, capf = ident("recovery-c"), ident("cm-c"), ident("capf-c")
    s = new_store()
    install(s, "ITL", tl("ITL", rec, [rec.record(Role.SAST), cm.record(Role.CCM), cm.record(Role.TFTP),
                                      capf.record(Role.CAPF), capf.record(Role.SAST)]))
    expect(rules.decide_config(s, CFG + ".sgn", sgn(cm), profile=P8861, now=NOW), "G.4-signed-by-itl-tftp",
           True)
    expect(rules.decide_trust_list(s, tl("ITL", capf, [capf.record(Role.SAST)]), kind="ITL", profile=P8861,
                                   now=NOW), "G.3.3-signed-by-itl-sast", True)
    expect(rules.decide_config(s, CFG + ".sgn", sgn(capf), profile=P8861, now=NOW),
           "G.4-reject-unknown-signer", False, VerifyReason.WRONG_ROLE)
    expect(rules.decide_trust_list(s, tl("ITL", cm, [cm.record(Role.SAST)]), kind="ITL", profile=P8861,
                                   now=NOW), "G.3.5-reject-unknown-signer", False, VerifyReason.WRONG_ROLE)


def _answer(who: Ident, roles: set[int], *, ttl: int = 3600, from_tvs: bool = True) -> TvsAnswer:
    return TvsAnswer(cert_der=certs.cert_der(who.cert), roles=frozenset(roles), ttl=ttl,
                     cert_from_tvs=from_tvs)


@pytest.mark.parametrize("role", [r for r in ALL_ROLES if r not in FILE_SIGNING])
def test_tvs_must_answer_a_tftp_role_for_a_config_signer(role: int) -> None:
    """§G.4 (c) [INF], §E.7.4: TVS knowing the config signer with any role but TFTP / CCM+TFTP does not
    make it a config signer."""
    s = with_itl_and_config()
    who = ident("cm-b")
    expect(rules.decide_config(s, CFG + ".sgn", sgn(who), profile=P8861, now=NOW,
                               tvs_answer=_answer(who, {role})),
           "G.4-tvs-wrong-role", False, VerifyReason.WRONG_ROLE)


@pytest.mark.parametrize("role", [r for r in ALL_ROLES if r != Role.SAST])
def test_tvs_must_answer_sast_for_a_trust_list_signer(role: int) -> None:
    """§G.3.4, §E.7.4: TVS knowing the trust-list signer with any role but SAST: WRONG_ROLE."""
    s = with_itl_and_config()
    expect(rules.decide_trust_list(s, itl_b(), kind="ITL", profile=P8861, now=NOW,
                                   tvs_answer=_answer(ident("recovery-b"), {role})),
           "G.3.4-tvs-wrong-role", False, VerifyReason.WRONG_ROLE)


def test_a_cached_tvs_answer_vouches_for_a_config_signer_only_within_its_ttl() -> None:
    """§E.4 TTL, §G.1 "TVS certificate cache with per-entry expiry": a cached answer decides without
    asking until ``now`` reaches its expiry; then TVS is asked again. A TTL-0 answer is used for the
    decision it was asked for and never cached."""
    s = with_itl_and_config()
    who = ident("cm-b")
    data = sgn(who)
    pending = rules.decide_config(s, CFG + ".sgn", data, profile=P8861, now=NOW)
    assert pending.pending and pending.needs_tvs is not None
    s.cache_tvs(pending.needs_tvs, _answer(who, {Role.TFTP}, ttl=100), NOW)
    expect(rules.decide_config(s, CFG + ".sgn", data, profile=P8861, now=NOW + 99), "G.4-vouched-by-tvs",
           True)
    assert rules.decide_config(s, CFG + ".sgn", data, profile=P8861, now=NOW + 100).pending
    zero = _answer(who, {Role.TFTP}, ttl=0)
    s.cache_tvs(pending.needs_tvs, zero, NOW)
    assert rules.decide_config(s, CFG + ".sgn", data, profile=P8861, now=NOW).pending
    expect(rules.decide_config(s, CFG + ".sgn", data, profile=P8861, now=NOW, tvs_answer=zero),
           "G.4-vouched-by-tvs", True)


@pytest.mark.parametrize("artefact", ["ITL", "config"])
def test_a_verify_answer_handed_in_never_makes_a_file_signer(artefact: str) -> None:
    """§E.7.2, §G.3.4 "TVS returns the certificate": a VERIFY answer (TVS judged a certificate the phone
    sent) handed straight to the rule, with the right roles and the genuine certificate, is not a
    returned certificate: the signer stays unknown to TVS."""
    s = with_itl_and_config()
    d: Decision
    if artefact == "ITL":
        d = rules.decide_trust_list(s, itl_b(), kind="ITL", profile=P8861, now=NOW,
                                    tvs_answer=_answer(ident("recovery-b"), {Role.SAST}, from_tvs=False))
        expect(d, "G.3.4-tvs-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)
    else:
        who = ident("cm-b")
        d = rules.decide_config(s, CFG + ".sgn", sgn(who), profile=P8861, now=NOW,
                                tvs_answer=_answer(who, {Role.TFTP}, from_tvs=False))
        expect(d, "G.4-tvs-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)
