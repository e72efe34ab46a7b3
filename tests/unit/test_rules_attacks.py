"""An attacker on the path (or a misconfigured cluster) against the phone's §G rules (phoneemu.phone.rules).

Each attempt builds a file, a TVS answer or a TLS peer certificate the rules of spec §G reject, hands it
to the rule a booting phone calls, and pins the refusal (rule id, reason code, nothing installed). One
attempt the phone wrongly *rejected* is at the top: a DN written in the other RDN order (spec §A.7).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

import pytest

from phoneemu.crypto import certs
from phoneemu.errors import VerifyReason
from phoneemu.formats import encrypted, header, signed, trustlist
from phoneemu.formats.trustlist import Role
from phoneemu.phone import rules
from phoneemu.phone.events import Decision
from phoneemu.phone.store import TrustStore, TvsAnswer, TvsStatus
from tests.unit.test_rules import (
    CFG,
    NOW,
    P7962,
    P8861,
    Ident,
    _enc_pki,
    _forged,
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


# --------------------------------------------------------------------------- §A.7 DN order (wrongly rejected)
def _certutils_info(who: Ident) -> header.SignerInfo:
    """Tags 4/5/6 as certutils writes them (spec §A.7): RFC 4514 attributes in the certificate's stored
    order joined with ``,`` — the RDNs in the opposite order to CUCM's ``;`` text (``certs.dn_text``)."""
    return header.SignerInfo(name=",".join(a.rfc4514_string() for a in who.cert.subject),
                             serial=certs.serial_bytes(who.cert.serial_number),
                             issuer=",".join(a.rfc4514_string() for a in who.cert.issuer))


def _resign(data: bytes, who: Ident, info: header.SignerInfo) -> bytes:
    """``data`` (a signed file) signed again by ``who`` with header signer text ``info``."""
    h = header.parse_header(data, fmt="test").header
    return header.sign_header(h, data[h.header_length:], who.signer, signer_info=info)


def test_certutils_dn_order_is_the_same_issuer_as_cucms() -> None:
    """The same issuer in the two orders, and the cases it must still tell apart."""
    x = ident("recovery-x")
    cucm, certutils = certs.dn_text(x.cert.issuer), _certutils_info(x).issuer
    assert cucm != certutils and certs.normalise_dn(cucm) != certs.normalise_dn(certutils)  # order differs
    assert rules._same_issuer(certutils, cucm) and rules._same_issuer(cucm.upper(), certutils)
    assert not rules._same_issuer(certutils, cucm.replace("OU=VTG", "OU=VTX"))
    assert not rules._same_issuer(certutils, cucm + ";C=NZ") and not rules._same_issuer("CN=a,O=b", "CN=a")
    assert rules._same_issuer(None, cucm)


def test_an_itl_signed_with_a_certutils_signer_text_is_vouched_for_by_tvs() -> None:
    """§G.3.4 with a header written as certutils writes it (§A.7): TVS returns exactly the signer's
    certificate with role SAST and the signature verifies. Before: the returned certificate's issuer
    (CUCM order) was not the header's (stored order): G.3.4-tvs-unknown-signer, and the phone locked."""
    x = ident("recovery-x")
    info = _certutils_info(x)
    own = replace(x.record(Role.SAST), subject=info.name, issuer=info.issuer)  # certutils record text too
    itl = _resign(tl("ITL", x, [own]), x, info)
    s = with_itl_and_config()
    pending = rules.decide_trust_list(s, itl, kind="ITL", profile=P8861, now=NOW)
    assert pending.rule == "G.3.4-needs-tvs" and pending.needs_tvs is not None
    answer = TvsAnswer(cert_der=certs.cert_der(x.cert), roles=frozenset({Role.SAST}))
    assert answer.mismatch(pending.needs_tvs) is None and s.cache_tvs(pending.needs_tvs, answer, NOW)
    d = rules.decide_trust_list(s, itl, kind="ITL", profile=P8861, now=NOW, tvs_answer=answer)
    expect(d, "G.3.4-vouched-by-tvs", True)
    # the same header, signed by another key: still refused (the issuer only names the signer)
    forged = _resign(tl("ITL", x, [own]), ident("forger-x"), info)
    expect(rules.decide_trust_list(s, forged, kind="ITL", profile=P8861, now=NOW, tvs_answer=answer),
           "G.3-bad-signature", False, VerifyReason.BAD_SIGNATURE)


def test_a_config_whose_header_lists_the_issuer_in_stored_order_is_the_itl_tftp_records() -> None:
    """§G.4 (b): the config signer is the ITL's CCM+TFTP record, its header written certutils' way.
    Before: G.4-reject-unknown-signer (no record named it)."""
    cm = ident("cm-a")
    s = new_store()
    install(s, "ITL", itl_a())
    expect(_config(s, _resign(sgn(cm), cm, _certutils_info(cm))), "G.4-signed-by-itl-tftp", True)
    # the SAST-only recovery certificate, named the same way, is still no config signer (§G.5)
    rec = ident("recovery-a")
    expect(_config(s, _resign(sgn(rec), rec, _certutils_info(rec))), "G.4-reject-unknown-signer", False,
           VerifyReason.WRONG_ROLE)


# --------------------------------------------------------------------------- attempts the phone refuses
def _phone_with_itl() -> TrustStore:
    """A phone holding cluster A's ITL (SAST recovery-a, CCM+TFTP cm-a, TVS tvs-a) and no config: TVS
    is not usable, so a signer no list knows is refused at once (§G.3.5, §G.4)."""
    s = new_store()
    install(s, "ITL", itl_a())
    return s


def _trust(s: TrustStore, data: bytes, kind: str = "ITL", **kw: object) -> Decision:
    return rules.decide_trust_list(s, data, kind=kind, profile=P8861, now=NOW, **kw)  # type: ignore[arg-type]


def _config(s: TrustStore, data: bytes, name: str = CFG + ".sgn", **kw: object) -> Decision:
    return rules.decide_config(s, name, data, profile=P8861, now=NOW, **kw)  # type: ignore[arg-type]


def _a_list(signer: Ident, kind: str = "ITL") -> bytes:
    rec, cm = ident("recovery-a"), ident("cm-a")
    return tl(kind, signer, [rec.record(Role.SAST), cm.record(Role.CCM_TFTP)], ts=NOW + 60)


def _itl_signed_by_tftp_record() -> Decision:
    return _trust(_phone_with_itl(), _a_list(ident("cm-a")))


def _ctl_signed_by_capf_record() -> Decision:
    s = new_store()
    install(s, "CTL", ctl_a())
    return _trust(s, _a_list(ident("capf-a"), "CTL"), "CTL")


def _config_signed_by_sast_only_record() -> Decision:
    return _config(_phone_with_itl(), sgn(ident("recovery-a")))


def _config_signed_by_tvs_record() -> Decision:
    return _config(_phone_with_itl(), sgn(ident("tvs-a")))


def _forged_signer_text() -> Decision:
    """The header names the ITL's SAST record (name, issuer, serial); an attacker's key signed it."""
    rec = ident("recovery-a")
    return _trust(_phone_with_itl(), _resign(_a_list(rec), ident("attacker"), rec.signer.info))


def _hash_claim_differs_from_signature() -> Decision:
    """Signed with SHA-256, HASH_ALGORITHM (tag 8) then rewritten to SHA-1."""
    data = tl("ITL", ident("recovery-a"), [ident("recovery-a").record(Role.SAST)], hash_alg=2, ts=NOW + 5)
    at = header.parse_header(data, fmt="test").header.offset_of(header.HeaderTag.HASH_ALGORITHM)
    assert at is not None
    return _trust(_phone_with_itl(), data[:at + 3] + b"\x01" + data[at + 4:])


def _second_signature_tlv() -> Decision:
    """A second SIGNATURE TLV in the header (HEADER_LENGTH grown to hold it): one checked, one used?"""
    data = _a_list(ident("recovery-a"))
    ph = header.parse_header(data, fmt="test")
    at, n = ph.signature_span
    grown = (ph.body_offset + n).to_bytes(2, "big")
    return _trust(_phone_with_itl(), data[:8] + grown + data[10:at + n] + data[at:at + n] + data[at + n:])


def _record_appended_after_the_signed_list() -> Decision:
    evil = trustlist.build_record(ident("attacker").record(Role.SAST))
    return _trust(_phone_with_itl(), _a_list(ident("recovery-a")) + evil)


def _expired_sast_signer() -> Decision:
    old = ident("expired-sast", before=4000, after=-1)
    s = new_store()
    install(s, "ITL", tl("ITL", old, [old.record(Role.SAST)]))  # first contact: taken on trust (§G.2)
    return _trust(s, tl("ITL", old, [old.record(Role.SAST)], ts=NOW + 1))


def _not_yet_valid_tftp_signer() -> Decision:
    rec, soon = ident("recovery-a"), ident("tftp-from-tomorrow", before=-1)
    s = new_store()
    install(s, "ITL", tl("ITL", rec, [rec.record(Role.SAST), soon.record(Role.TFTP)]))
    return _config(s, sgn(soon))


def _sha512_itl_on_a_sha1_model() -> Decision:
    s = new_store(P7962)
    install(s, "ITL", itl_a(), P7962)
    rec = ident("recovery-a")
    return rules.decide_trust_list(s, tl("ITL", rec, [rec.record(Role.SAST)], hash_alg=3, ts=NOW + 1),
                                   kind="ITL", profile=P7962, now=NOW)


def _another_phones_config() -> Decision:
    other = signed.build(body=xml(device_name="SEPAABBCCDDEEFF"), filename="SEPAABBCCDDEEFF.cnf.xml.sgn",
                         signer=ident("cm-a").signer, timestamp=NOW)
    return _config(_phone_with_itl(), other)


def _tvs_returns_a_forged_certificate() -> Decision:
    """TVS answers with a certificate carrying the signer's serial and issuer, and another key."""
    answer = TvsAnswer(cert_der=_forged(ident("recovery-b")), roles=frozenset({Role.SAST}))
    return _trust(with_itl_and_config(), itl_b(), tvs_answer=answer)


def _tvs_roles_lack_sast() -> Decision:
    answer = TvsAnswer(cert_der=certs.cert_der(ident("recovery-b").cert), roles=frozenset({Role.TFTP}))
    return _trust(with_itl_and_config(), itl_b(), tvs_answer=answer)


def _tvs_server_not_in_the_itl() -> Decision:
    return _trust(with_itl_and_config(), itl_b(), tvs_answer=TvsStatus.SERVER_UNTRUSTED)


def _encrypted_config_for_another_phone() -> Decision:
    s = new_store(mic=ident("mic-phone"))
    install(s, "ITL", itl_a())
    return _config(s, _enc_pki(ident("other-phone"), ident("cm-a")), CFG + ".enc.sgn")


def _firmware_signed_by_the_tftp_key() -> Decision:
    s = new_store()
    s.firmware_load = "sip88xx.12-8-1"
    return rules.decide_firmware(s, _fw(ident("cm-a")), profile=P8861, now=NOW,
                                 image_signers=[ident("imagesigning").cert], file="sip88xx.14-2-1.loads",
                                 requested_load="sip88xx.14-2-1")


def _capf_server_presenting_the_tvs_certificate() -> Decision:
    return rules.decide_capf_server(_phone_with_itl(), certs.cert_der(ident("tvs-a").cert), profile=P8861,
                                    now=NOW)


ATTACKS: dict[str, tuple[Callable[[], Decision], str, VerifyReason]] = {
    "itl-signed-by-ccm+tftp-record": (_itl_signed_by_tftp_record, "G.3.5-reject-unknown-signer",
                                      VerifyReason.WRONG_ROLE),
    "ctl-signed-by-capf-record": (_ctl_signed_by_capf_record, "G.3.5-reject-unknown-signer",
                                  VerifyReason.WRONG_ROLE),
    "config-signed-by-sast-only": (_config_signed_by_sast_only_record, "G.4-reject-unknown-signer",
                                   VerifyReason.WRONG_ROLE),
    "config-signed-by-tvs-record": (_config_signed_by_tvs_record, "G.4-reject-unknown-signer",
                                    VerifyReason.WRONG_ROLE),
    "forged-signer-text": (_forged_signer_text, "G.3-bad-signature", VerifyReason.BAD_SIGNATURE),
    "hash-claim-sha1-signed-sha256": (_hash_claim_differs_from_signature, "G.3-bad-signature",
                                      VerifyReason.BAD_SIGNATURE),
    "second-signature-tlv": (_second_signature_tlv, "G.3.1-malformed", VerifyReason.OTHER),
    "record-appended-after-signing": (_record_appended_after_the_signed_list, "G.3-bad-signature",
                                      VerifyReason.BAD_SIGNATURE),
    "expired-sast-signer": (_expired_sast_signer, "G.3-expired-signer", VerifyReason.EXPIRED),
    "not-yet-valid-tftp-signer": (_not_yet_valid_tftp_signer, "G.4-expired-signer", VerifyReason.EXPIRED),
    "sha512-itl-on-sha1-model": (_sha512_itl_on_a_sha1_model, "G.3.1-unsupported-hash",
                                 VerifyReason.UNSUPPORTED_HASH),
    "another-phones-config": (_another_phones_config, "G.4-wrong-file-name", VerifyReason.OTHER),
    "tvs-forged-certificate": (_tvs_returns_a_forged_certificate, "G.3-bad-signature",
                               VerifyReason.BAD_SIGNATURE),
    "tvs-roles-lack-sast": (_tvs_roles_lack_sast, "G.3.4-tvs-wrong-role", VerifyReason.WRONG_ROLE),
    "tvs-server-not-in-itl": (_tvs_server_not_in_the_itl, "G.3.4-tvs-server-untrusted",
                              VerifyReason.TVS_UNREACHABLE),
    "enc-config-for-another-phone": (_encrypted_config_for_another_phone, "G.12.3-decrypt-failed",
                                     VerifyReason.DECRYPT_FAILED),
    "firmware-signed-by-tftp-key": (_firmware_signed_by_the_tftp_key, "D-unknown-signer",
                                    VerifyReason.UNKNOWN_SIGNER),
    "capf-server-is-tvs-record": (_capf_server_presenting_the_tvs_certificate, "F.1-capf-server-untrusted",
                                  VerifyReason.UNKNOWN_SIGNER),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_the_phone_refuses_what_section_g_rejects(attack: str) -> None:
    """Each attempt is refused by the §G rule named, never left pending, nothing to install."""
    make, rule, code = ATTACKS[attack]
    d = make()
    if attack == "enc-config-for-another-phone":  # wrong key: the unwrap or the pad/hash check says so
        assert d.rule == rule and not d.accepted and d.artefact is None, d
        assert d.reason_code in (VerifyReason.DECRYPT_FAILED, VerifyReason.HASH_MISMATCH), d
        return
    expect(d, rule, False, code)
    assert d.artefact is None and d.needs_tvs is None


def test_an_encrypted_config_with_a_wrong_pad_count_does_not_decrypt() -> None:
    """§C.3 step 7 / §G.12.3: tag 20 says one pad byte more than was added; the dropped byte changes the
    plaintext, so the tag 27 hash refuses it (signature made over the changed header: a cluster's error)."""
    phone, cm = ident("mic-phone"), ident("cm-a")
    body = xml() + b"\r" * 3  # the plaintext ends in 0x0D bytes, so a longer pad count still unpads
    good = encrypted.build_pki(plaintext=body, filename=CFG + ".enc.sgn", signer=cm.signer,
                               recipient_cert=phone.cert, timestamp=NOW, rand=random.Random(5).randbytes)
    h = header.parse_header(good, fmt="test").header
    assert h.encryption is not None and h.encryption.padding is not None and h.encryption.padding < 16
    bumped = replace(h, encryption=replace(h.encryption, padding=h.encryption.padding + 1))
    data = header.sign_header(bumped, good[h.header_length:], cm.signer)
    s = new_store(mic=phone)
    install(s, "ITL", itl_a())
    d = _config(s, data, CFG + ".enc.sgn")
    expect(d, "G.12.3-decrypt-failed", False, VerifyReason.HASH_MISMATCH)
