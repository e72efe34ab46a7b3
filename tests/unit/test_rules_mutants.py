"""Rules a mutation run of phoneemu.phone.rules found unpinned (spec §G): each test fails when one
comparison, condition or operand of a decision is changed (a boundary moved, a trust state merged,
a check dropped), so a wrong rule cannot pass the suite unnoticed."""

from __future__ import annotations

import datetime as dt
import random

from phoneemu.crypto import certs
from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.errors import VerifyReason
from phoneemu.formats import config as config_fmt
from phoneemu.formats import encrypted, signed, trustlist
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.phone import rules
from phoneemu.phone.profile import profile_from_dict
from phoneemu.phone.store import TrustStore, TvsAnswer
from tests.unit.test_rules import (
    CFG,
    DAY,
    MAC,
    NOW,
    P7940,
    P7962,
    P8861,
    PSYM,
    Ident,
    _enc_pki,
    _fw,
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


def _rollback_itl_over(store: TrustStore) -> None:
    """Install cluster A's rollback (empty) ITL (spec §B.7) on ``store``, which must trust recovery-a."""
    rec = ident("recovery-a")
    rollback = tl("ITL", rec, list(trustlist.rollback_records(trustlist.parse(itl_a()).records)), ts=NOW + 5)
    install(store, "ITL", rollback)
    assert store.itl_is_empty


# --------------------------------------------------------------------------- profile limits (§B.5, §G.3)
def test_rsa_signer_key_of_exactly_the_model_limit_is_accepted() -> None:
    """A signer key of exactly ``max_rsa_bits`` is within the model's limit: only a bigger one is refused
    (§G.3, profile limits; the limit is the largest key a model verifies)."""
    big = ident("rsa2048-sast", spec="rsa2048")
    s = new_store(P7962)
    install(s, "ITL", tl("ITL", big, [big.record(Role.SAST)]), P7962)
    expect(rules.decide_trust_list(s, tl("ITL", big, [big.record(Role.SAST)], ts=NOW + 1), kind="ITL",
                                   profile=P7962, now=NOW), "G.3.3-signed-by-itl-sast", True)


def test_trust_list_of_exactly_the_size_limit_is_accepted_one_byte_more_is_not() -> None:
    """§B.5: the limit is the largest trust list a model loads — exactly that size loads, one byte more is
    ``G.3.1-oversize``, also when the caller hands an already parsed list."""
    raw = itl_a()
    at_limit = profile_from_dict("cp-8861", {"trust_list_limit": len(raw)})
    expect(rules.decide_trust_list(new_store(at_limit), raw, kind="ITL", profile=at_limit, now=NOW),
           "G.2-first-itl-tofu", True)
    below = profile_from_dict("cp-8861", {"trust_list_limit": len(raw) - 1})
    for given in (raw, trustlist.parse(raw)):
        d = rules.decide_trust_list(new_store(below), given, kind="ITL", profile=below, now=NOW)
        expect(d, "G.3.1-oversize", False, VerifyReason.TOO_LARGE)
        assert f"{len(raw)} bytes exceeds the {len(raw) - 1}-byte" in d.reason


def test_signer_certificate_is_valid_on_its_first_and_last_second() -> None:
    """Validity of a file signer (module docstring "Validity"; X.509 validity is inclusive, RFC 5280
    §4.1.2.5): ``now`` equal to notBefore or notAfter is inside it, one second beyond is not."""
    edge = ident("edge-sast", before=1, after=1)  # notBefore NOW - 1 day, notAfter NOW + 1 day
    s = new_store()
    install(s, "ITL", tl("ITL", edge, [edge.record(Role.SAST)]))
    update = tl("ITL", edge, [edge.record(Role.SAST)], ts=NOW + 1)
    for now in (NOW - DAY, NOW + DAY):
        expect(rules.decide_trust_list(s, update, kind="ITL", profile=P8861, now=now),
               "G.3.3-signed-by-itl-sast", True)
    for now in (NOW - DAY - 1, NOW + DAY + 1):
        expect(rules.decide_trust_list(s, update, kind="ITL", profile=P8861, now=now),
               "G.3-expired-signer", False, VerifyReason.EXPIRED)


# --------------------------------------------------------------------------- §G.2 / §G.3 trust lists
def test_first_ctl_over_the_rollback_itl_is_taken_on_trust() -> None:
    """§G.2 [INF], module docstring: with only the rollback (empty) ITL installed a first CTL is accepted
    unchecked, as on first contact."""
    s = new_store()
    install(s, "ITL", itl_a())
    _rollback_itl_over(s)
    foreign = ident("recovery-b")
    expect(rules.decide_trust_list(s, tl("CTL", foreign, [foreign.record(Role.SAST)]), kind="CTL",
                                   profile=P8861, now=NOW), "G.2-first-ctl-tofu", True)


def test_rollback_itl_does_not_open_a_phone_that_holds_a_ctl() -> None:
    """§G.3 note (CSC-213407): rollback blanks only the ITL — a phone with a CTL still authenticates a new
    ITL with the CTL (§G.3 step 2), so a foreign ITL is refused, not accepted by §G.3.6."""
    s = new_store()
    install(s, "CTL", ctl_a())
    install(s, "ITL", itl_a())  # signed by recovery-a, a SAST of CTL A
    _rollback_itl_over(s)
    d = rules.decide_trust_list(s, itl_b(), kind="ITL", profile=P8861, now=NOW)
    expect(d, "G.3.5-reject-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)


def test_signer_in_both_lists_is_the_ctls() -> None:
    """§G.3 step 2 before step 3: a signer that is a SAST record of both the CTL and the ITL is reported as
    verified by the CTL (``G.3.2-signed-by-ctl``)."""
    s = new_store()
    install(s, "CTL", ctl_a())   # recovery-a is a SAST record of CTL A
    install(s, "ITL", itl_a())   # and of ITL A
    d = rules.decide_trust_list(s, itl_a(ts=NOW + 60), kind="ITL", profile=P8861, now=NOW)
    expect(d, "G.3.2-signed-by-ctl", True)
    assert "installed CTL" in d.reason


# --------------------------------------------------------------------------- TLS peers (§E.1, §B.2)
def test_key_only_record_refuses_the_same_key_and_serial_under_another_issuer() -> None:
    """Our convention (spec §B.2, §E.1; :func:`rules.record_matches_peer`): a record without a certificate
    matches a peer with its key *and*, where it carries them, its serial and issuer — a certificate with
    the same key and serial issued by another CA is not that record."""
    tvs, ca = ident("tvs-a"), ident("other-ca")
    full = tvs.record(Role.TVS)
    key_only = TrustRecord(role=Role.TVS, subject=full.subject, issuer=full.issuer, serial=full.serial,
                           public_key=full.public_key)
    t = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    req = certs.CertRequest(subject=certs.dn_text(tvs.cert.subject), public_key=tvs.key.public_key(),
                            serial=tvs.cert.serial_number, not_before=t - dt.timedelta(days=1),
                            not_after=t + dt.timedelta(days=30))
    other = certs.issue_certificate(req, issuer_key=ca.key, issuer=ca.cert)
    assert rules.record_matches_peer(key_only, certs.cert_der(tvs.cert), tvs.cert)
    assert not rules.record_matches_peer(key_only, certs.cert_der(other), other)


def test_tvs_server_without_a_certificate_is_not_trusted() -> None:
    """§E.1: no certificate from the TVS server → not trusted (False, never an exception), ITL or not."""
    s = new_store()
    install(s, "ITL", itl_a())
    assert not rules.tvs_server_trusted(s, None)
    assert not rules.tvs_server_trusted(s, b"")
    assert not rules.tvs_server_trusted(new_store(), None)


# --------------------------------------------------------------------------- §G.4 configs
def test_rollback_itl_beside_a_ctl_keeps_config_checks_on() -> None:
    """§G.4 "empty (rollback) ITL: any unsigned config" is the ITL-only phone's state: with a CTL
    installed (rollback blanks only the ITL, §G.3 note) unsigned configs are refused and a signed one
    must come from a TFTP signer of the lists (§G.4 (a))."""
    s = new_store()
    install(s, "CTL", ctl_a())
    install(s, "ITL", itl_a())
    _rollback_itl_over(s)
    expect(rules.decide_config(s, CFG, xml(), profile=P8861, now=NOW), "G.4-unsigned-rejected", False,
           VerifyReason.NOT_SIGNED)
    expect(rules.decide_config(s, CFG + ".sgn", sgn(ident("cm-b")), profile=P8861, now=NOW),
           "G.4-reject-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)
    expect(rules.decide_config(s, CFG + ".sgn", sgn(ident("cm-a")), profile=P8861, now=NOW),
           "G.4-signed-by-ctl-tftp", True)
    assert rules.static_request_name(s, P8861, "RingList.xml") == "RingList.xml.sgn"


def test_config_hash_the_model_lacks_is_refused_before_any_signer_lookup() -> None:
    """Profile limits apply before any trust rule (module docstring, §A.4): a SHA-512 config on a SHA-1
    model is ``G.4-unsupported-hash`` whoever signed it — TVS is not asked about a file the phone cannot
    verify."""
    s = with_itl_and_config(P7962)
    assert rules.tvs_usable(s, P7962)
    d = rules.decide_config(s, CFG + ".sgn", sgn(ident("cm-b"), hash_alg=3), profile=P7962, now=NOW)
    expect(d, "G.4-unsupported-hash", False, VerifyReason.UNSUPPORTED_HASH)
    assert d.needs_tvs is None


def _legacy_store_holding_an_itl() -> TrustStore:
    """A non-SBD phone (cp-7940) whose store holds ITL B (installed through an SBD model's rules) and a
    CTL signed by ITL B's SAST that lists only cm-a (CCM+TFTP)."""
    rec_b = ident("recovery-b")
    s = new_store(P7940)
    install(s, "ITL", itl_b())  # cm-b is CCM+TFTP in ITL B only
    install(s, "CTL", tl("CTL", rec_b, [rec_b.record(Role.SAST), ident("cm-a").record(Role.CCM_TFTP)]))
    return s


def test_legacy_phone_never_takes_a_config_signer_from_an_itl() -> None:
    """§G.2: a model without Security By Default ignores the ITL, so only its CTL's TFTP records sign its
    configs (§G.4 (a)) — even when its store holds an ITL (here installed through an SBD model's rules)."""
    s = _legacy_store_holding_an_itl()
    expect(rules.decide_config(s, CFG + ".sgn", sgn(ident("cm-b")), profile=P7940, now=NOW),
           "G.4-reject-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)
    expect(rules.decide_config(s, CFG + ".sgn", sgn(ident("cm-a")), profile=P7940, now=NOW),
           "G.4-signed-by-ctl-tftp", True)


def test_legacy_phone_never_trusts_a_tls_peer_through_an_itl() -> None:
    """§G.2 (a model without Security By Default ignores the ITL), §E.7.1, §F.1: only the CTL's records
    authenticate its HTTPS and CAPF servers — an ITL record in its store does not."""
    s = _legacy_store_holding_an_itl()
    der_b = certs.cert_der(ident("cm-b").cert)
    expect(rules.decide_https_server(s, der_b, profile=P7940, now=NOW), "E.7.1-https-not-trusted", False,
           VerifyReason.UNKNOWN_SIGNER)
    expect(rules.decide_https_server(s, certs.cert_der(ident("cm-a").cert), profile=P7940, now=NOW),
           "E.7.1-https-cert-in-trust-list", True)
    capf_b = ident("capf-b")
    s2 = new_store(P7940)
    install(s2, "ITL", tl("ITL", ident("recovery-b"), [ident("recovery-b").record(Role.SAST),
                                                      capf_b.record(Role.CAPF)]))
    expect(rules.decide_capf_server(s2, certs.cert_der(capf_b.cert), profile=P7940, now=NOW),
           "F.1-capf-server-untrusted", False, VerifyReason.UNKNOWN_SIGNER)


def test_locked_phone_calls_unchanged_only_its_own_config() -> None:
    """§G.3.5 (our wording convention, :func:`rules._unchanged_config`): "unchanged" is said only of the
    installed config's own name carrying the same XML — not of the same XML under another file name, nor
    of a ``.sgn`` whose header FILENAME is another phone's."""
    s = with_itl_and_config()
    s.locked = True
    other_name = "SEPAABBCCDDEEFF.cnf.xml.sgn"
    named_other = signed.build(body=xml(), filename=other_name, signer=ident("cm-a").signer, timestamp=NOW)
    for name, data in ((other_name, named_other), (CFG + ".sgn", named_other)):
        d = rules.decide_config(s, name, data, profile=P8861, now=NOW)
        expect(d, "G.3.5-locked-ignores-config", False, VerifyReason.UNKNOWN_SIGNER)
        assert "unchanged" not in d.reason, name


def _symmetric_enc(signer_name: str, key: bytes) -> bytes:
    return encrypted.build_symmetric(plaintext=xml(), filename=CFG + ".enc.sgn",
                                     signer=ident(signer_name).signer, key=key, timestamp=NOW,
                                     rand=random.Random(3).randbytes)


def test_manual_key_config_signer_is_checked_where_the_model_checks_it() -> None:
    """§C.3/§C.5: only models that ignore the ``.enc.sgn`` signature (``enc_signer_checked`` False) take a
    manual-key config from an unknown signer; a model that checks it refuses one (§G.4)."""
    key = bytes(range(16))
    checking = profile_from_dict("cp-7942-symmetric", {"enc_signer_checked": True})
    s = new_store(checking)
    install(s, "ITL", itl_a(), checking)
    s.set_symmetric_key(key)
    expect(rules.decide_config(s, CFG + ".enc.sgn", _symmetric_enc("cm-b", key), profile=checking, now=NOW),
           "G.4-reject-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)
    good = rules.decide_config(s, CFG + ".enc.sgn", _symmetric_enc("cm-a", key), profile=checking, now=NOW)
    expect(good, "G.12.3-decrypted", True)
    assert "signer-not-checked" not in good.reason


def test_pki_config_is_not_decrypted_by_a_model_without_pki() -> None:
    """§G.12 step 3 / §C.5: a model that is not PKI-capable (manual key only) cannot unwrap a PKI
    ``.enc.sgn``, even when its store holds a certificate and key — ``G.12.3-no-key``; and CAPF is not
    started (it would issue a certificate the model cannot use), even on a model that speaks CAPF."""
    phone = ident("mic-phone")
    for profile in (PSYM, profile_from_dict("cp-7942-symmetric", {"capf": True})):
        s = new_store(profile, mic=phone)
        install(s, "ITL", itl_a(), profile)
        d = rules.decide_config(s, CFG + ".enc.sgn", _enc_pki(phone, ident("cm-a")), profile=profile, now=NOW)
        expect(d, "G.12.3-no-key", False, VerifyReason.DECRYPT_FAILED)
        assert d.action is None


# --------------------------------------------------------------------------- §G.12 short config, §C.6 names
def test_blank_cert_hash_starts_capf_even_with_a_phone_certificate() -> None:
    """§G.12 step 2: "mismatch, blank hash, or no certificate → start a CAPF session" — a blank certHash
    never counts as a match."""
    phone = ident("mic-phone")
    s = new_store(mic=phone)
    stub = config_fmt.stub_of(config_fmt.parse(xml()), "")
    d = rules.decide_short_config(s, stub, profile=P8861)
    expect(d, "G.12.2-cert-hash-mismatch", False, VerifyReason.HASH_MISMATCH)
    assert d.action == "start-capf" and "blank certHash" in d.reason


def test_manual_key_on_a_pki_phone_fetches_the_encrypted_config() -> None:
    """§G.12 step 2, §C.5 (module rule of :func:`rules.decide_short_config`): a phone holding a manual
    config key fetches the encrypted config with it — certHash is not consulted, also on a PKI model."""
    assert P7962.pki_capable
    s = new_store(P7962, mic=ident("mic-phone"))
    s.set_symmetric_key(bytes(range(16)))
    stub = config_fmt.stub_of(config_fmt.parse(xml()), "0" * 32)
    d = rules.decide_short_config(s, stub, profile=P7962)
    expect(d, "G.12.2-symmetric-key-present", True)
    assert d.action == "fetch-encrypted"


def test_config_names_follow_the_policy_and_the_rollback_itl() -> None:
    """§C.6 row 5: only the ``encrypted-first`` policy asks for the ``.enc.sgn`` up front (with
    ``short-config-first`` the short config decides, §G.12); under the rollback ITL the phone takes
    unsigned configs (§G.4) and asks for the plain one."""
    short_first = profile_from_dict("cp-7962", {"config_policy": "short-config-first"})
    s = new_store(short_first)
    s.set_symmetric_key(bytes(range(16)))
    assert rules.config_request_names(s, short_first, MAC) == (CFG,)
    rolled = new_store()
    install(rolled, "ITL", itl_a())
    _rollback_itl_over(rolled)
    assert rules.config_request_names(rolled, P8861, MAC) == (CFG,)


# --------------------------------------------------------------------------- §D firmware
def _image_signer(subject: str, serial: int, ca: Ident | None) -> Ident:
    """An image-signing identity with a chosen serial, issued by ``ca`` (self-signed when None)."""
    key = generate_key(KeySpec.parse("rsa1024"), unsafe_seed=f"mutants-{subject}-{serial}")
    t = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    req = certs.CertRequest(subject=subject, public_key=key.public_key(), serial=serial,
                            not_before=t - dt.timedelta(days=1), not_after=t + dt.timedelta(days=30))
    cert = certs.issue_certificate(req, issuer_key=ca.key if ca else key, issuer=ca.cert if ca else None)
    return Ident(key=key, cert=cert)


def test_firmware_signer_is_found_by_serial_and_issuer_together() -> None:
    """§D, §B.4 (issuer + serial name a signer): among the model's image-signing certificates the one with
    the image's serial *and* issuer verifies it — two from the same CA (same issuer), or two with the
    same serial from different CAs, are told apart, so a good image signed by the second is accepted."""
    ca, other_ca = ident("image-ca"), ident("image-ca-2")
    first, second = _image_signer("CN=img-1;O=Lab", 71, ca), _image_signer("CN=img-2;O=Lab", 72, ca)
    same_serial = _image_signer("CN=img-3;O=Lab", 71, other_ca)
    for signers, signer in (([first.cert, second.cert], second),
                            ([first.cert, same_serial.cert], same_serial)):
        d = rules.decide_firmware(new_store(), _fw(signer), profile=P8861, now=NOW, image_signers=signers)
        expect(d, "D-signed-by-image-key", True)
    stranger = _image_signer("CN=img-4;O=Lab", 73, ca)  # the trusted CA's issuer, a serial none has
    expect(rules.decide_firmware(new_store(), _fw(stranger), profile=P8861, now=NOW,
                                 image_signers=[first.cert, second.cert]),
           "D-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)


# --------------------------------------------------------------------------- §G.9 / §G.5 SIP-TLS
def test_empty_ccm_record_is_no_cucm_certificate_for_tls() -> None:
    """§G.9 (CSC-6901: TLS only if the CTL holds a *valid* CUCM certificate): an empty CCM+TFTP record
    (§B.7) does not make the phone use TLS."""
    rec = ident("recovery-a")
    s = new_store()
    install(s, "CTL", tl("CTL", rec, [rec.record(Role.SAST), TrustRecord(role=Role.CCM_TFTP)]))
    secure = config_fmt.parse(xml(device_security_mode=3))
    d = rules.decide_secure_transport(s, secure, profile=P8861, attempts=0)
    assert d is not None and (d.rule, d.action) == ("G.9-retry-trust-file", "retry")


def test_sip_registrar_must_be_a_ccm_record_of_the_ctl() -> None:
    """§G.5 "SIP-TLS server: CCM / CCM+TFTP in CTL": the CTL's CAPF or SAST certificate presented by a
    registrar is refused; its CCM+TFTP certificate is accepted."""
    s = new_store()
    install(s, "CTL", ctl_a())
    for name in ("capf-a", "recovery-a"):
        d = rules.decide_sip_server(s, certs.cert_der(ident(name).cert), server="cucm")
        assert (d.rule, d.accepted) == ("G.5-sip-server-untrusted", False), name
    d = rules.decide_sip_server(s, certs.cert_der(ident("cm-a").cert), server="cucm")
    assert (d.rule, d.accepted) == ("G.5-sip-server-in-ctl", True)


# --------------------------------------------------------------------------- §E.7.1 HTTPS via TVS
def test_https_tvs_answer_without_roles_is_an_unknown_certificate() -> None:
    """§E.7.1, §E.7.4 (a certificate is trusted only for the roles TVS returns): a TVS answer naming the
    server's certificate with no role at all is "TVS does not know it" (``E.7.1-https-tvs-unknown``,
    "Host Not Found"), not a wrong-role answer."""
    s = with_itl_and_config()
    der = certs.cert_der(ident("tomcat-https").cert)
    d = rules.decide_https_server(s, der, profile=P8861, now=NOW,
                                  tvs_answer=TvsAnswer(cert_der=der, roles=frozenset()))
    expect(d, "E.7.1-https-tvs-unknown", False, VerifyReason.UNKNOWN_SIGNER)
    assert d.status == rules.HTTPS_FAILED_STATUS
