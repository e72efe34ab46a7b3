"""Security audit of the phone's acceptance decisions: crafted and tampered files (spec §G, §A, §D, §E).

The hardest rule of the project: the phone never accepts a file that the rules of spec §G would reject.
Each test builds a file with the project's own builders, tampers with it, and asks the rules. Probes
that the other rule tests already cover (tampered body, unknown signer, wrong role in the ITL, TVS
unreachable/unknown/wrong role, another phone's config, wrong-phone wrap, oversize) are not repeated.
Where §G is silent (timestamps, SHA-1 "downgrade") the tests pin that no rejection is invented.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace

import pytest

from phoneemu.crypto import certs
from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.errors import VerifyReason
from phoneemu.formats import encrypted, signed, trustlist
from phoneemu.formats import header as hdr
from phoneemu.formats.config import Server
from phoneemu.formats.trustlist import Role
from phoneemu.phone import rules
from phoneemu.phone.events import Decision
from phoneemu.phone.store import TrustStore, TvsAnswer, TvsResult
from tests.unit.test_rules import (
    CFG,
    NOW,
    P7962,
    P8861,
    Ident,
    _enc_pki,
    _fw,
    expect,
    ident,
    install,
    itl_a,
    new_store,
    sgn,
    tl,
    with_itl_and_config,
    xml,
)


def _twin(of: Ident, name: str) -> Ident:
    """A self-made certificate with the subject, issuer and serial of ``of`` but another key (forgery)."""
    key = generate_key(KeySpec.parse("rsa1024"), unsafe_seed=f"audit-twin-{name}")
    t = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    req = certs.CertRequest(subject=certs.dn_text(of.cert.subject), public_key=key.public_key(),
                            serial=of.cert.serial_number, not_before=t - dt.timedelta(days=1),
                            not_after=t + dt.timedelta(days=365))
    return Ident(key=key, cert=certs.issue_certificate(req, issuer_key=key))


def _signed_naming(named: Ident, by: Ident, body: bytes, *, filename: str) -> bytes:
    """``body`` signed with ``by``'s key while the header signer fields (tags 4, 5, 6) name ``named``."""
    template = hdr.SignedHeader(version=(1, 2), signer=named.signer.info, hash_alg=1, modulus_code=1,
                                signature=b"", filename=filename, timestamp=NOW + 7)
    return hdr.sign_header(template, body, by.signer, signer_info=named.signer.info)


def _itl_body() -> bytes:
    return trustlist.parse(itl_a()).raw[trustlist.parse(itl_a()).body_offset:]


def _rebuilt(data: bytes, **changes: object) -> bytes:
    """``data`` with header fields replaced and the header rebuilt, *not* re-signed."""
    ph = hdr.parse_header(data, fmt="audit")
    return hdr.build_header(replace(ph.header, **changes)) + data[ph.body_offset:]  # type: ignore[arg-type]


# --------------------------------------------------------------------------- §G.3 signer of a trust list
@pytest.mark.parametrize("by", ["attacker-twin", "cm-a", "tvs-a"])
def test_itl_whose_header_names_the_sast_record_but_is_signed_by_another_key(by: str) -> None:
    """§G.3.3, §B.4: the header names the installed SAST record (issuer + serial), the signature is by
    another key — a forged twin certificate, or a key the ITL lists in another role. Bad signature."""
    s = new_store()
    install(s, "ITL", itl_a())
    sast = ident("recovery-a")
    key = _twin(sast, "sast") if by == "attacker-twin" else ident(by)
    forged = _signed_naming(sast, key, _itl_body(), filename="ITLFile.tlv")
    d = rules.decide_trust_list(s, forged, kind="ITL", profile=P8861, now=NOW)
    expect(d, "G.3-bad-signature", False, VerifyReason.BAD_SIGNATURE)
    s.apply(d)
    assert s.itl is not None and s.itl.raw == itl_a() and s.locked


@pytest.mark.parametrize(("signer", "tvs_roles"),
                         [("tvs-a", {Role.TVS}), ("cm-a", {Role.CCM_TFTP, Role.TFTP})])
def test_trust_list_signed_by_a_listed_non_sast_certificate(signer: str, tvs_roles: set[int]) -> None:
    """§G.3.3/§G.5: a TVS or CCM+TFTP record of the ITL cannot sign a trust list; nor can TVS make it a
    signer unless it answers with SAST (§E.7.4)."""
    s = with_itl_and_config()
    who = ident(signer)
    data = tl("ITL", who, [who.record(Role.SAST)])
    pending = rules.decide_trust_list(s, data, kind="ITL", profile=P8861, now=NOW)
    assert pending.pending and not pending.accepted
    answer = TvsAnswer(cert_der=certs.cert_der(who.cert), roles=frozenset(tvs_roles))
    expect(rules.decide_trust_list(s, data, kind="ITL", profile=P8861, now=NOW, tvs_answer=answer),
           "G.3.4-tvs-wrong-role", False, VerifyReason.WRONG_ROLE)
    no_tvs = new_store()
    install(no_tvs, "ITL", itl_a())
    expect(rules.decide_trust_list(no_tvs, data, kind="ITL", profile=P8861, now=NOW),
           "G.3.5-reject-unknown-signer", False, VerifyReason.WRONG_ROLE)


def test_tvs_answer_with_a_twin_certificate_does_not_vouch() -> None:
    """§E.7.2/§E.7.4: TVS answers with a certificate carrying the signer's serial and issuer but another
    key (or with another certificate altogether): never a reason to accept."""
    s = with_itl_and_config()
    rec_b = ident("recovery-b")
    data = tl("ITL", rec_b, [rec_b.record(Role.SAST)])
    twin = _twin(rec_b, "recovery-b")
    twin_answer = TvsAnswer(cert_der=certs.cert_der(twin.cert), roles=frozenset({0}))
    expect(rules.decide_trust_list(s, data, kind="ITL", profile=P8861, now=NOW, tvs_answer=twin_answer),
           "G.3-bad-signature", False, VerifyReason.BAD_SIGNATURE)
    # the twin's own file, vouched by a TVS that knows the genuine certificate only
    forged = tl("ITL", twin, [twin.record(Role.SAST)])
    genuine = TvsAnswer(cert_der=certs.cert_der(rec_b.cert), roles=frozenset({0}))
    expect(rules.decide_trust_list(s, forged, kind="ITL", profile=P8861, now=NOW, tvs_answer=genuine),
           "G.3-bad-signature", False, VerifyReason.BAD_SIGNATURE)


@pytest.mark.parametrize("code", [0, 4, 5, 0x80, 255])
def test_unknown_hash_codes_are_refused_by_every_rule(code: int) -> None:
    """§A.4 knows codes 1, 2, 3 only: any other code is refused, even on first contact (TOFU)."""
    rec = ident("recovery-a")
    itl = _rebuilt(itl_a(), hash_alg=code)
    expect(rules.decide_trust_list(new_store(), itl, kind="ITL", profile=P8861, now=NOW),
           "G.3.1-unsupported-hash", False, VerifyReason.UNSUPPORTED_HASH)
    s = with_itl_and_config()
    expect(rules.decide_trust_list(s, _rebuilt(tl("ITL", rec, [rec.record(Role.SAST)], ts=NOW + 3),
                                               hash_alg=code), kind="ITL", profile=P8861, now=NOW),
           "G.3.1-unsupported-hash", False, VerifyReason.UNSUPPORTED_HASH)
    cfg = _rebuilt(sgn(ident("cm-a")), hash_alg=code)
    expect(rules.decide_config(s, CFG + ".sgn", cfg, profile=P8861, now=NOW), "G.4-unsupported-hash", False,
           VerifyReason.UNSUPPORTED_HASH)
    tones = _rebuilt(signed.build(body=b"<tones/>", filename="g3-tones.xml.sgn", signer=ident("cm-a").signer,
                                  timestamp=NOW), hash_alg=code)
    assert not rules.decide_static_file(s, "g3-tones.xml.sgn", tones, profile=P8861, now=NOW).accepted
    img = ident("imagesigning")
    fw = _rebuilt(_fw(img), hash_alg=code)
    expect(rules.decide_firmware(s, fw, profile=P8861, now=NOW, image_signers=[img.cert],
                                 file="sip88xx.14-2-1.loads", requested_load="sip88xx.14-2-1"),
           "D-unsupported-hash", False, VerifyReason.UNSUPPORTED_HASH)


def test_sha1_signed_files_are_not_a_downgrade_the_spec_forbids() -> None:
    """§A.4: SHA-1 is CUCM's default; §G names no minimum hash, so a SHA-1 update on a model that also
    verifies SHA-512 is accepted (no invented rejection); only the profile's list decides (§G.3.1)."""
    s = new_store()
    rec = ident("recovery-a")
    install(s, "ITL", tl("ITL", rec, [rec.record(Role.SAST)], hash_alg=3))
    expect(rules.decide_trust_list(s, tl("ITL", rec, [rec.record(Role.SAST)], hash_alg=1, ts=NOW + 1),
                                   kind="ITL", profile=P8861, now=NOW), "G.3.3-signed-by-itl-sast", True)


@pytest.mark.parametrize("how", ["short-signature", "long-signature", "zero-padded", "modulus-code",
                                 "unknown-modulus-code", "no-signature"])
def test_inconsistent_signature_length_fields(how: str) -> None:
    """§A.2 tags 11, 12 and §A.5: a signature whose length or modulus code disagrees with the signer's
    key never verifies (the header is rebuilt, HEADER_LENGTH recomputed, nothing re-signed)."""
    s = with_itl_and_config()
    good = sgn(ident("cm-a"))
    sig = hdr.parse_header(good, fmt="audit").header.signature
    change: dict[str, object] = {
        "short-signature": {"signature": sig[1:]},
        "long-signature": {"signature": sig + b"\0"},
        "zero-padded": {"signature": b"\0" + sig},
        "modulus-code": {"modulus_code": 2},
        "unknown-modulus-code": {"modulus_code": 7},
        "no-signature": {"signature": b""},
    }[how]  # type: ignore[assignment]
    d = rules.decide_config(s, CFG + ".sgn", _rebuilt(good, **change), profile=P8861, now=NOW)
    assert not d.accepted and d.rule in ("G.4-bad-signature", "G.4-unsupported-key"), d


# --------------------------------------------------------------------------- content outside what was signed
def test_appended_or_cut_trust_list_content() -> None:
    """§A.3: the signature covers the whole file minus the signature TLV. A record appended after the
    signed body, the last record cut, or HEADER_LENGTH moved into the body: never accepted."""
    s = new_store()
    install(s, "ITL", itl_a())
    upd = itl_a(ts=NOW + 9)
    ph = trustlist.parse(upd)
    extra = trustlist.build_record(ident("attacker").record(Role.SAST))
    cut = upd[:ph.spans[-1][0]]
    for data in (upd + extra, cut, upd + b"\x0d" * 4):
        d = rules.decide_trust_list(s, data, kind="ITL", profile=P8861, now=NOW)
        assert not d.accepted and d.rule in ("G.3-bad-signature", "G.3.1-malformed"), d
    hl = ph.body_offset + 4
    moved = upd[:8] + hl.to_bytes(2, "big") + upd[10:]
    assert not rules.decide_trust_list(s, moved, kind="ITL", profile=P8861, now=NOW).accepted
    assert s.itl is not None and s.itl.raw == itl_a()


def test_appended_config_content_is_refused() -> None:
    """§A.3/§C.1: bytes after a signed config's body (an extra XML element) are inside the signed range."""
    s = with_itl_and_config()
    good = sgn(ident("cm-a"))
    for tail in (b"<TVS/>", b"\r\n", b"\0"):
        expect(rules.decide_config(s, CFG + ".sgn", good + tail, profile=P8861, now=NOW),
               "G.4-bad-signature", False, VerifyReason.BAD_SIGNATURE)


# --------------------------------------------------------------------------- §G.3.6 empty ITL, §G timestamps
def test_forged_empty_itl_never_replaces_a_real_one() -> None:
    """§G.3.6 concerns an *installed* rollback ITL; a new empty ITL is an ordinary update (§G.3): signed
    by an unknown key or a forgery naming the SAST record, it is refused — and the phone does not then
    accept unsigned configs. The genuine rollback ITL (signed by the SAST) is installed (§G.6)."""
    s = new_store()
    install(s, "ITL", itl_a())
    attacker = ident("attacker")
    empty_own = trustlist.build(kind="ITL", records=[], signer=attacker.signer, timestamp=NOW + 1)
    empty_named = _signed_naming(ident("recovery-a"), attacker, b"", filename="ITLFile.tlv")
    blanked = trustlist.rollback_records(trustlist.parse(itl_a()).records)
    rollback_own = tl("ITL", attacker, list(blanked), ts=NOW + 1)
    for data, rule in ((empty_own, "G.3.5-reject-unknown-signer"), (empty_named, "G.3-bad-signature"),
                       (rollback_own, "G.3.5-reject-unknown-signer")):
        d = rules.decide_trust_list(s, data, kind="ITL", profile=P8861, now=NOW)
        assert d.rule == rule and not d.accepted, d
    assert not s.itl_is_empty
    expect(rules.decide_config(s, CFG, xml(), profile=P8861, now=NOW), "G.4-unsigned-rejected", False,
           VerifyReason.NOT_SIGNED)
    genuine = tl("ITL", ident("recovery-a"), list(blanked), ts=NOW + 2)
    install(s, "ITL", genuine)
    assert s.itl_is_empty


def test_older_itl_signed_by_the_trusted_sast_is_accepted_spec_is_silent() -> None:
    """§G.3 has no timestamp or version check (§A.2 tag 15 is only "Unix seconds"): an older ITL signed
    by an installed SAST record is accepted. Noted as a spec gap, no rejection invented."""
    s = new_store()
    install(s, "ITL", itl_a(ts=NOW + 100))
    expect(rules.decide_trust_list(s, itl_a(ts=NOW - 10 * 86400), kind="ITL", profile=P8861, now=NOW),
           "G.3.3-signed-by-itl-sast", True)


# --------------------------------------------------------------------------- §G.4 configs
@pytest.mark.parametrize("signer", ["tvs-a", "recovery-a", "capf-a"])
def test_config_signed_by_a_non_tftp_record(signer: str) -> None:
    """§G.4/§G.5: only TFTP / CCM+TFTP may sign a config; TVS, SAST and CAPF records may not."""
    rec, cm, tvs, capf = ident("recovery-a"), ident("cm-a"), ident("tvs-a"), ident("capf-a")
    s = new_store()
    install(s, "ITL", tl("ITL", rec, [rec.record(Role.SAST), cm.record(Role.CCM_TFTP), tvs.record(Role.TVS),
                                      capf.record(Role.CAPF)]))
    expect(rules.decide_config(s, CFG + ".sgn", sgn(ident(signer)), profile=P8861, now=NOW),
           "G.4-reject-unknown-signer", False, VerifyReason.WRONG_ROLE)


def test_config_naming_the_tftp_record_signed_by_another_key() -> None:
    s = with_itl_and_config()
    for by in (_twin(ident("cm-a"), "cm"), ident("recovery-a"), ident("tvs-a")):
        forged = _signed_naming(ident("cm-a"), by, xml(), filename=CFG + ".sgn")
        expect(rules.decide_config(s, CFG + ".sgn", forged, profile=P8861, now=NOW),
               "G.4-bad-signature", False, VerifyReason.BAD_SIGNATURE)


def test_tvs_answer_for_another_certificate_does_not_vouch_for_a_config() -> None:
    """§G.4 (c): TVS must know *this* signer (issuer + serial) and its key must verify the file."""
    s = with_itl_and_config()
    data = sgn(ident("cm-b"))
    for cert, rule, code in ((ident("cm-a").cert, "G.4-tvs-unknown-signer", VerifyReason.UNKNOWN_SIGNER),
                             (_twin(ident("cm-b"), "cm-b").cert, "G.4-bad-signature",
                              VerifyReason.BAD_SIGNATURE)):
        answer = TvsAnswer(cert_der=certs.cert_der(cert), roles=frozenset({Role.TFTP, Role.CCM_TFTP}))
        expect(rules.decide_config(s, CFG + ".sgn", data, profile=P8861, now=NOW, tvs_answer=answer), rule,
               False, code)


def test_cached_tvs_answer_keeps_its_roles_across_artefacts() -> None:
    """§E.7.4: a cached answer that made a certificate a trust-list signer (SAST) does not make it a
    config signer, and one that vouched for a config signer (TFTP) does not make it a trust-list signer."""
    s = with_itl_and_config()
    rec_b, cm_b = ident("recovery-b"), ident("cm-b")
    s.cache_tvs(rules.query_key(signed.parse(sgn(rec_b)).header),
                TvsAnswer(cert_der=certs.cert_der(rec_b.cert), roles=frozenset({Role.SAST})), NOW)
    expect(rules.decide_config(s, CFG + ".sgn", sgn(rec_b), profile=P8861, now=NOW),
           "G.4-tvs-wrong-role", False, VerifyReason.WRONG_ROLE)
    s.cache_tvs(rules.query_key(signed.parse(sgn(cm_b)).header),
                TvsAnswer(cert_der=certs.cert_der(cm_b.cert), roles=frozenset({Role.TFTP})), NOW)
    expect(rules.decide_trust_list(s, tl("ITL", cm_b, [cm_b.record(Role.SAST)]), kind="ITL", profile=P8861,
                                   now=NOW), "G.3.4-tvs-wrong-role", False, VerifyReason.WRONG_ROLE)


@pytest.mark.parametrize("how", ["unsigned", "unknown-signer", "tampered", "foreign-tvs-answer"])
def test_a_refused_config_never_changes_the_tvs_or_capf_servers(how: str) -> None:
    """§G.1/§G.4: the TVS server list comes from the last *accepted* config; a config with other
    ``<TVS>``/``<capfList>`` servers that §G.4 refuses changes nothing the phone trusts."""
    s = with_itl_and_config()
    before_tvs, before_cfg = s.tvs_servers, s.config
    evil = xml(tvs_servers=(Server(host="203.0.113.9", port=2445, priority=0),),
               capf_servers=(Server(host="203.0.113.9", port=3804, priority=0),), capf_auth_mode=2)
    name, data, answer = CFG + ".sgn", sgn(ident("cm-a"), evil), None
    if how == "unsigned":
        name, data = CFG, evil
    elif how == "unknown-signer":
        data = sgn(ident("attacker"), evil)
    elif how == "tampered":
        good = sgn(ident("cm-a"))
        data = good[:signed.parse(good).body_offset] + evil
    else:
        data = sgn(ident("attacker"), evil)
        answer = TvsAnswer(cert_der=certs.cert_der(ident("cm-a").cert), roles=frozenset({Role.TFTP}))
    d = rules.decide_config(s, name, data, profile=P8861, now=NOW, tvs_answer=answer)
    assert not d.accepted, d
    s.apply(d)
    assert s.tvs_servers == before_tvs and s.config is before_cfg and s.capf_auth_mode == 0


def test_truncated_or_extended_ciphertext_is_refused_before_decryption() -> None:
    """§G.12 step 3: the ``.enc.sgn`` signature is verified first; cut or added cipher blocks break it."""
    phone = ident("mic-phone")
    s = new_store(mic=phone)
    install(s, "ITL", itl_a())
    good = _enc_pki(phone, ident("cm-a"))
    for data in (good[:-16], good + bytes(16), good[:-32] + good[-16:]):
        expect(rules.decide_config(s, CFG + ".enc.sgn", data, profile=P8861, now=NOW),
               "G.4-bad-signature", False, VerifyReason.BAD_SIGNATURE)


def test_pki_enc_sgn_claiming_the_manual_key_mode_is_still_a_pki_file_to_the_7962() -> None:
    """§C.3/§C.5: on a model that ignores the signer of a manual-key file, a PKI file relabelled as
    manual-key (tag 18 = 1, wrapped key dropped) only reaches decryption with the manual key — which
    the attacker does not have: it is refused."""
    phone = ident("mic-phone")
    s = new_store(P7962, mic=phone)
    install(s, "ITL", itl_a(), P7962)
    s.set_symmetric_key(bytes(range(16)))
    ef = encrypted.parse(_enc_pki(phone, ident("attacker")))
    relabelled = replace(ef.encryption, mode=encrypted.MODE_SYMMETRIC, wrapped_key=None, key_size=128)
    data = hdr.sign_header(replace(ef.header, encryption=relabelled), ef.ciphertext, ident("attacker").signer)
    d = rules.decide_config(s, CFG + ".enc.sgn", data, profile=P7962, now=NOW)
    assert not d.accepted and d.rule == "G.12.3-decrypt-failed", d


# --------------------------------------------------------------------------- §D firmware
def test_firmware_signed_by_a_non_image_signing_certificate() -> None:
    """§D, §G.5: the TFTP (config-signing) certificate is not an image signer, nor is a twin of the
    image signer."""
    img = ident("imagesigning")
    s = new_store()
    for signer, rule in ((ident("cm-a"), "D-unknown-signer"), (_twin(img, "img"), "D-bad-signature")):
        d = rules.decide_firmware(s, _fw(signer), profile=P8861, now=NOW, image_signers=[img.cert],
                                  file="sip88xx.14-2-1.loads", requested_load="sip88xx.14-2-1")
        assert d.rule == rule and not d.accepted, d


def test_firmware_with_content_appended_or_cut() -> None:
    img = ident("imagesigning")
    good = _fw(img)
    for data in (good + b"\0", good[:-1], good + _fw(img, "sip88xx.99-9-9")):
        d = rules.decide_firmware(new_store(), data, profile=P8861, now=NOW, image_signers=[img.cert],
                                  file="sip88xx.14-2-1.loads", requested_load="sip88xx.14-2-1")
        assert not d.accepted and d.rule in ("D-malformed", "D-bad-signature"), d


@pytest.mark.parametrize("forgery", ["unknown-signer", "tampered", "garbage-signature"])
def test_forged_image_of_the_running_load_is_not_accepted(forgery: str) -> None:
    """§D: "a tampered image fails authentication and is rejected". An image whose manifest names the
    load the phone already runs is no exception: it is authenticated before "already running" is said
    (before the fix, any such image — unsigned, tampered — was ``D-already-running``, accepted)."""
    img = ident("imagesigning")
    s = new_store()
    s.firmware_load = "sip88xx.14-2-1"
    if forgery == "unknown-signer":
        data = _fw(ident("attacker"))
    elif forgery == "tampered":
        good = _fw(img)
        data = good[:-1] + bytes([good[-1] ^ 1])
    else:
        data = _rebuilt(_fw(img), signature=bytes(128))
    for requested in (None, "sip88xx.14-2-1"):
        d = rules.decide_firmware(s, data, profile=P8861, now=NOW, image_signers=[img.cert],
                                  file="sip88xx.14-2-1.loads", requested_load=requested)
        assert not d.accepted and d.rule in ("D-unknown-signer", "D-bad-signature"), d
    expect(rules.decide_firmware(s, _fw(img), profile=P8861, now=NOW, image_signers=[img.cert]),
           "D-already-running", True)
    assert s.firmware_load == "sip88xx.14-2-1"


# --------------------------------------------------------------------------- §E.1 TVS server
def test_tvs_server_presenting_a_twin_of_the_itl_tvs_certificate_is_untrusted() -> None:
    """§E.1: the TVS server certificate must be the ITL TVS record; same subject, issuer and serial with
    another key is not it. A certificate of the ITL in another role is not a TVS either (§G.5)."""
    s = with_itl_and_config()
    assert rules.tvs_server_trusted(s, certs.cert_der(ident("tvs-a").cert))
    for cert in (_twin(ident("tvs-a"), "tvs").cert, ident("cm-a").cert, ident("recovery-a").cert):
        assert not rules.tvs_server_trusted(s, certs.cert_der(cert))
    assert not rules.tvs_server_trusted(s, b"") and not rules.tvs_server_trusted(s, b"\x30\x03\x02\x01\x01")


def test_a_signed_static_file_cannot_be_a_config_and_vice_versa() -> None:
    """§A.2 tag 14: a correctly signed static file served under the config's name is refused."""
    s = with_itl_and_config()
    tones = signed.build(body=xml(), filename="g3-tones.xml.sgn", signer=ident("cm-a").signer, timestamp=NOW)
    expect(rules.decide_config(s, CFG + ".sgn", tones, profile=P8861, now=NOW), "G.4-wrong-file-name", False,
           VerifyReason.OTHER)
    expect(rules.decide_static_file(s, "g3-tones.xml.sgn", sgn(ident("cm-a")), profile=P8861, now=NOW),
           "G.4-wrong-file-name", False, VerifyReason.OTHER)



# --------------------------------------------------------------------------- §E.7.1 vs §G.3.4: VERIFY cache
def _verify_cached(s: TrustStore, cert: Ident, roles: tuple[int, ...]) -> None:
    """What phone/https.py caches after TVS answered a VERIFY "valid, with ``roles``" (§E.7.1)."""
    answer = asyncio.run(_https_verify_answer(s, certs.cert_der(cert.cert), roles))
    assert isinstance(answer, TvsAnswer)
    s.cache_tvs(rules.https_query_key(cert.cert), answer, NOW)


async def _https_verify_answer(s: TrustStore, der: bytes, roles: tuple[int, ...]) -> TvsResult:
    from unittest import mock

    from phoneemu.net import tvs_client
    from phoneemu.phone import https
    from phoneemu.phone.events import EventLog

    reply = mock.Mock(valid=True, roles=roles, ttl=86400)
    with mock.patch.object(tvs_client, "tvs_verify", mock.AsyncMock(return_value=reply)):
        return await https._verify(s, der, device_name="SEP001122334455", versions=("1.2",), keylog=None,
                                   timeout=1.0, events=EventLog(), now=NOW, mac="001122334455")


def test_a_cached_verify_answer_never_makes_a_file_signer() -> None:
    """§G.3.4/§E.7.2: a trust-list (or config, §G.4 (c)) signer is vouched for by the certificate TVS
    *returns* to a QUERY. A VERIFY answer (§E.7.1) only says "valid, roles ..." about the certificate an
    HTTPS server presented — and CUCM's TVS matches it by serial + issuer (§E.6). Before the fix, a forged
    HTTPS certificate carrying the serial and issuer of a certificate TVS knows (roles SAST, CCM+TFTP)
    was cached and then accepted, without any QUERY, as the signer of an ITL and of a config. Now the
    rules ask TVS (QUERY); TVS returns the genuine certificate and the forgery fails."""
    s = with_itl_and_config()
    rec_b = ident("recovery-b")  # known to the cluster's TVS, not in ITL A
    twin = _twin(rec_b, "verify-cache")
    _verify_cached(s, twin, (Role.SAST, Role.CCM_TFTP))
    forged_itl = tl("ITL", twin, [twin.record(Role.SAST), twin.record(Role.CCM_TFTP)], ts=NOW + 1)
    forged_cfg = sgn(twin)
    d = rules.decide_trust_list(s, forged_itl, kind="ITL", profile=P8861, now=NOW)
    assert d.rule == "G.3.4-needs-tvs" and d.pending, d
    d2 = rules.decide_config(s, CFG + ".sgn", forged_cfg, profile=P8861, now=NOW)
    assert d2.rule == "G.4-needs-tvs" and d2.pending, d2
    genuine = TvsAnswer(cert_der=certs.cert_der(rec_b.cert), roles=frozenset({Role.SAST, Role.CCM_TFTP}))
    expect(rules.decide_trust_list(s, forged_itl, kind="ITL", profile=P8861, now=NOW, tvs_answer=genuine),
           "G.3-bad-signature", False, VerifyReason.BAD_SIGNATURE)
    cached = s.tvs_lookup(rules.https_query_key(twin.cert), NOW)
    assert cached is not None and not cached.cert_from_tvs
    expect(rules.decide_config(s, CFG + ".sgn", forged_cfg, profile=P8861, now=NOW, tvs_answer=cached),
           "G.4-tvs-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)


def test_a_cached_verify_answer_still_serves_https_and_a_query_answer_replaces_it() -> None:
    """§E.7.1: the VERIFY answer keeps authenticating that HTTPS certificate from the cache; a QUERY
    answer cached under the same key (the genuine certificate) then refuses the forged HTTPS server."""
    s = with_itl_and_config()
    rec_b = ident("recovery-b")
    twin = _twin(rec_b, "verify-cache")
    _verify_cached(s, twin, (Role.APP_SERVER,))
    der = certs.cert_der(twin.cert)
    expect(rules.decide_https_server(s, der, profile=P8861, now=NOW), "E.7.1-https-cached", True)
    s.cache_tvs(rules.https_query_key(twin.cert),
                TvsAnswer(cert_der=certs.cert_der(rec_b.cert), roles=frozenset({Role.APP_SERVER})), NOW)
    expect(rules.decide_https_server(s, der, profile=P8861, now=NOW), "E.7.1-https-tvs-unknown", False,
           VerifyReason.UNKNOWN_SIGNER)


@pytest.mark.parametrize("twin_first", [False, True])
def test_duplicate_issuer_and_serial_records_in_the_installed_itl(twin_first: bool) -> None:
    """§B.4: the installed (trusted) ITL holds two SAST records with one issuer + serial (the recovery
    certificate and a twin with another key). Issuer + serial is all that names the signer (§B.4, §G.3
    step 1), so every matching record is tried: a file signed by either key is accepted — each is a
    trusted record of the installed list, so no trust is widened (was: the first matching record
    decided and the second signer was refused)."""
    rec = ident("recovery-a")
    twin = _twin(rec, "dup")
    recs = [twin.record(Role.SAST), rec.record(Role.SAST)] if twin_first else \
        [rec.record(Role.SAST), twin.record(Role.SAST)]
    s = new_store()
    install(s, "ITL", tl("ITL", rec, recs))
    by_twin = tl("ITL", twin, [rec.record(Role.SAST)], ts=NOW + 1)
    by_rec = tl("ITL", rec, [rec.record(Role.SAST)], ts=NOW + 1)
    first, other = (by_twin, by_rec) if twin_first else (by_rec, by_twin)
    expect(rules.decide_trust_list(s, first, kind="ITL", profile=P8861, now=NOW), "G.3.3-signed-by-itl-sast",
           True)
    expect(rules.decide_trust_list(s, other, kind="ITL", profile=P8861, now=NOW), "G.3.3-signed-by-itl-sast",
           True)


def test_every_other_header_length_value_is_refused() -> None:
    """§A.1/§A.2 tag 2: HEADER_LENGTH decides where the header ends and the body begins. Every other
    value from 0 to 64 bytes past the true one, one past the file and 65535 is refused for a config and
    for a trust-list update — the signature covers the field, and a moved boundary leaves the signature
    TLV outside the header or the TLVs misaligned."""
    s = with_itl_and_config()
    def cfg(b: bytes) -> Decision:
        return rules.decide_config(s, CFG + ".sgn", b, profile=P8861, now=NOW)

    def itl(b: bytes) -> Decision:
        return rules.decide_trust_list(s, b, kind="ITL", profile=P8861, now=NOW)

    for name, data, decide in (("cfg", sgn(ident("cm-a")), cfg), ("itl", itl_a(ts=NOW + 3), itl)):
        true_hl = int.from_bytes(data[8:10], "big")
        assert decide(data).accepted, name
        for hl in (*range(0, min(len(data), true_hl + 64) + 1), len(data) + 1, 0xFFFF):
            if hl != true_hl:
                d = decide(data[:8] + hl.to_bytes(2, "big") + data[10:])
                assert not d.accepted and not d.pending, (name, hl, d)
