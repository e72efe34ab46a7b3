"""§G rules on trust-list edge cases: records sharing the signer's issuer + serial (§B.4, §G.3 step 1,
§G.4), a blank record that is not a rollback (§B.7, §G.3.6), and TLS peers' validity (module docstring
of phoneemu.phone.rules, "Validity")."""

from __future__ import annotations

import datetime as dt
from functools import cache

from phoneemu.crypto import certs
from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.errors import VerifyReason
from phoneemu.formats import signed, trustlist
from phoneemu.formats.trustlist import Role
from phoneemu.phone import rules
from phoneemu.phone.store import TrustStore
from tests.unit.test_rules import CFG, NOW, P8861, Ident, expect, ident, install, new_store, tl, xml

DAY = 86400
TWIN_SUBJECT = "CN=CallManager_twin;OU=VTG;O=Lab"


@cache
def twin(seed: str, *, before: int = 365, after: int = 3650) -> Ident:
    """A self-signed certificate with the same subject, issuer and serial as every other twin."""
    key = generate_key(KeySpec.parse("rsa1024"), unsafe_seed=f"rules-twin-{seed}")
    t = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    req = certs.CertRequest(subject=TWIN_SUBJECT, public_key=key.public_key(), serial=0x7E57,
                            not_before=t - dt.timedelta(days=before), not_after=t + dt.timedelta(days=after))
    return Ident(key=key, cert=certs.issue_certificate(req, issuer_key=key))


def itl_with_twins(first: Ident, second: Ident, role: int) -> bytes:
    """An ITL (signed by ``recovery-a``) holding both twins in ``role`` — the old certificate first."""
    rec = ident("recovery-a")
    return tl("ITL", rec, [rec.record(Role.SAST), first.record(role), second.record(role)])


def phone_with(kind: str, data: bytes) -> TrustStore:
    store = new_store()
    install(store, kind, data)  # first contact: taken on trust (§G.2)
    return store


# --------------------------------------------------------------------------- §G.3 trust lists
def test_an_itl_signed_by_the_second_of_two_sast_records_sharing_issuer_and_serial_is_accepted() -> None:
    """Before: only the first record was tried — G.3-bad-signature for a genuine update."""
    old, new = twin("old"), twin("new")
    store = phone_with("ITL", tl("ITL", old, [old.record(Role.SAST), new.record(Role.SAST)]))
    update = tl("ITL", new, [old.record(Role.SAST), new.record(Role.SAST)], ts=NOW + 1)
    expect(rules.decide_trust_list(store, update, kind="ITL", profile=P8861, now=NOW),
           "G.3.3-signed-by-itl-sast", True)


def test_an_expired_first_twin_does_not_hide_the_valid_second() -> None:
    """The old certificate expired; the new one (same issuer and serial, new key) signs. Before:
    G.3-expired-signer from the first record."""
    old, new = twin("expired", before=4000, after=-1), twin("renewed")
    ctl = tl("CTL", new, [old.record(Role.SAST), new.record(Role.SAST)])
    store = phone_with("CTL", ctl)
    update = tl("CTL", new, [old.record(Role.SAST), new.record(Role.SAST)], ts=NOW + 1)
    expect(rules.decide_trust_list(store, update, kind="CTL", profile=P8861, now=NOW),
           "G.3.2-signed-by-ctl", True)


def test_when_no_twin_verifies_the_first_failure_is_the_rule_and_every_one_is_said() -> None:
    old, new = twin("expired-2", before=4000, after=-1), twin("renewed-2")
    store = phone_with("ITL", tl("ITL", new, [old.record(Role.SAST), new.record(Role.SAST)]))
    forged = tl("ITL", twin("forger"), [old.record(Role.SAST), new.record(Role.SAST)], ts=NOW + 1)
    d = rules.decide_trust_list(store, forged, kind="ITL", profile=P8861, now=NOW)
    expect(d, "G.3-expired-signer", False, VerifyReason.EXPIRED)
    assert d.reason.startswith("2 records name the signer and none verifies: record 1: ")
    assert "record 2: " in d.reason and not d.pending


# --------------------------------------------------------------------------- §G.4 configs, static files
def test_a_config_and_a_static_file_signed_by_the_second_tftp_twin_are_accepted() -> None:
    """Before: G.4-bad-signature (only the first TFTP record was tried)."""
    old, new = twin("tftp-old"), twin("tftp-new")
    store = phone_with("ITL", itl_with_twins(old, new, Role.TFTP))
    cfg = signed.build(body=xml(), filename=CFG + ".sgn", signer=new.signer, timestamp=NOW)
    expect(rules.decide_config(store, CFG + ".sgn", cfg, profile=P8861, now=NOW),
           "G.4-signed-by-itl-tftp", True)
    tones = signed.build(body=b"<tones/>", filename="g3-tones.xml.sgn", signer=new.signer, timestamp=NOW)
    expect(rules.decide_static_file(store, "g3-tones.xml.sgn", tones, profile=P8861, now=NOW),
           "G.4-signed-by-itl-tftp", True)
    forged = signed.build(body=xml(), filename=CFG + ".sgn", signer=twin("tftp-forger").signer, timestamp=NOW)
    expect(rules.decide_config(store, CFG + ".sgn", forged, profile=P8861, now=NOW),
           "G.4-bad-signature", False, VerifyReason.BAD_SIGNATURE)


# --------------------------------------------------------------------------- §B.7, §G.3.6 rollback ITL
def test_an_itl_whose_only_blank_record_is_a_capf_one_is_not_a_rollback_itl() -> None:
    """A blank CAPF record is not what a rollback blanks (§B.7: TVS and TFTP entries). Before: the phone
    took the ITL as the rollback ITL and accepted any ITL (G.3.6) and unsigned configs."""
    rec, capf = ident("recovery-a"), ident("capf-a")
    blank_capf = trustlist.empty_record(Role.CAPF, dns_name="10.0.0.2", ip="10.0.0.2")
    store = phone_with("ITL", tl("ITL", rec, [rec.record(Role.SAST), capf.record(Role.CAPF), blank_capf]))
    assert not store.itl_is_empty
    other = ident("recovery-b")
    foreign = tl("ITL", other, [other.record(Role.SAST)])
    expect(rules.decide_trust_list(store, foreign, kind="ITL", profile=P8861, now=NOW),
           "G.3.5-reject-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)
    expect(rules.decide_config(store, CFG, xml(), profile=P8861, now=NOW), "G.4-unsigned-rejected", False,
           VerifyReason.NOT_SIGNED)


# --------------------------------------------------------------------------- TLS peers: no date check
def test_tls_peers_are_matched_with_their_records_without_a_validity_check() -> None:
    """Pins the documented convention (spec §E.1, §E.7.1, §F.1, §G.5 state only the record match; no
    date check on TLS peers is documented): an expired TVS, CAPF, HTTPS or SIP-TLS certificate that is
    the list's record is accepted."""
    rec = ident("recovery-a")
    tvs, capf, app, ccm = (ident(f"expired-{name}", before=4000, after=-1)
                           for name in ("tvs", "capf", "app", "ccm"))
    store = phone_with("ITL", tl("ITL", rec, [rec.record(Role.SAST), tvs.record(Role.TVS),
                                              capf.record(Role.CAPF), app.record(Role.APP_SERVER)]))
    assert rules.tvs_server_trusted(store, certs.cert_der(tvs.cert))
    assert rules.decide_capf_server(store, certs.cert_der(capf.cert), profile=P8861, now=NOW).accepted
    assert rules.decide_https_server(store, certs.cert_der(app.cert), profile=P8861, now=NOW).accepted
    sip = phone_with("CTL", tl("CTL", rec, [rec.record(Role.SAST), ccm.record(Role.CCM_TFTP)]))
    assert rules.decide_sip_server(sip, certs.cert_der(ccm.cert), server="127.0.0.1:5061").accepted
    assert int(ccm.cert.not_valid_after_utc.timestamp()) < NOW  # (they are expired)
