"""An audit of every place a certificate from the network reaches the phone's code (after the fuzz
campaign's finding of e2930bd: a TVS answer's certificate with a key no phone can load raised out of the
§G.3.4 rule). Exotic certificates — DSA, Ed25519, Ed448, EC P-521 and secp256k1, RSA 512 and 8192, an
unknown key-algorithm OID, odd serials and dates, empty names, a huge extension, trailing bytes — are fed
to each decision in memory: the TLS peer of TVS, CAPF, HTTPS and the SIP registrar, the certificate a TVS
QUERY answer returns, a CTL/ITL record, the LSC a CAPF server issues, ``phoneemu tvs``'s reading of an
answer. Each must end in a decision (or a clear error of our own classes), never another exception, and
never an acceptance the §G rules would not make."""

from __future__ import annotations

import datetime as dt
import warnings
from functools import cache
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

from phoneemu.commands import tvs as tvs_cmd
from phoneemu.crypto import certs
from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.errors import DecodeError, PhoneEmuError, VerifyReason
from phoneemu.formats import signed, trustlist
from phoneemu.formats.header import FileSigner
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.phone import rules
from phoneemu.phone.events import Decision
from phoneemu.phone.flash import Flash
from phoneemu.phone.store import Credential, TvsAnswer
from phoneemu.protocols import tvs
from tests.unit.test_rules import CFG, NOW, P8861, ident, new_store, tl, with_itl_and_config, xml

_NB = dt.datetime.fromtimestamp(NOW, dt.UTC) - dt.timedelta(days=30)
_NA = dt.datetime.fromtimestamp(NOW, dt.UTC) + dt.timedelta(days=365)
_ISSUER = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "exotic-ca")])
_RSA_OID = bytes.fromhex("06092a864886f70d010101")  # rsaEncryption
_UNKNOWN_OID = bytes.fromhex("06092a864886f70d010109")  # 1.2.840.113549.1.1.9: the fuzzer's bit flip


@cache
def _ca() -> rsa.RSAPrivateKey:
    key = generate_key(KeySpec.parse("rsa1024"), unsafe_seed="net-cert-audit-ca")
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@cache
def _public(kind: str) -> object:
    """A public key of ``kind`` (RSA-8192 made from numbers: no 8192-bit key generation in a unit test)."""
    if kind == "dsa2048":
        with warnings.catch_warnings():  # cryptography 51 deprecates DSA; a peer may still present one
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            return dsa.generate_private_key(2048).public_key()
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate().public_key()
    if kind == "ed448":
        return ed448.Ed448PrivateKey.generate().public_key()
    if kind == "rsa8192":
        return rsa.RSAPublicNumbers(65537, (1 << 8191) | 0x10001).public_key()
    return _private(kind).public_key()


@cache
def _private(kind: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if kind == "p521":
        return ec.generate_private_key(ec.SECP521R1())
    if kind == "secp256k1":
        return ec.generate_private_key(ec.SECP256K1())
    key = generate_key(KeySpec.parse(kind), unsafe_seed=f"net-cert-audit-{kind}")
    return key


def _cert(public: object, *, serial: int = 0x5EC, subject: str = "exotic", ext: bytes | None = None,
          nb: dt.datetime = _NB, na: dt.datetime = _NA, names: bool = True) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]) if names else x509.Name([])
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(_ISSUER if names else x509.Name([]))
         .public_key(public).serial_number(serial)  # type: ignore[arg-type]
         .not_valid_before(nb).not_valid_after(na))
    if ext is not None:
        b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.9.99"), ext),
                            critical=False)
    return b.sign(_ca(), hashes.SHA256())


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


@cache
def exotic(kind: str) -> bytes:
    """The DER of an exotic certificate (serial 0x5EC, issuer CN=exotic-ca unless the kind says)."""
    if kind in ("dsa2048", "ed25519", "ed448", "p521", "secp256k1", "rsa512", "rsa8192"):
        return _der(_cert(_public(kind)))
    base = _cert(_private("rsa1024").public_key())
    if kind == "unknown-oid":
        d = _der(base)
        assert d.count(_RSA_OID) == 1
        return d.replace(_RSA_OID, _UNKNOWN_OID)
    if kind == "serial-21-bytes":
        return _der(_cert(base.public_key(), serial=(1 << 158) | 0x5EC))
    if kind == "not-after-before-not-before":  # the builder refuses it: the two UTCTimes swapped
        a, b = dt.datetime(2030, 1, 1, tzinfo=dt.UTC), dt.datetime(2040, 1, 1, tzinfo=dt.UTC)
        d = _der(_cert(base.public_key(), nb=a, na=b))
        ea, eb = (b"\x17\x0d" + t.strftime("%y%m%d%H%M%SZ").encode() for t in (a, b))
        assert d.count(ea + eb) == 1
        return d.replace(ea + eb, eb + ea)
    if kind == "year-1950":
        return _der(_cert(base.public_key(), nb=dt.datetime(1950, 1, 1, tzinfo=dt.UTC),
                          na=dt.datetime(1951, 1, 1, tzinfo=dt.UTC)))
    if kind == "year-9999":
        return _der(_cert(base.public_key(), nb=dt.datetime(9999, 1, 1, tzinfo=dt.UTC),
                          na=dt.datetime(9999, 12, 31, tzinfo=dt.UTC)))
    if kind == "empty-names":
        return _der(_cert(base.public_key(), names=False))
    if kind == "extension-60k":
        return _der(_cert(base.public_key(), ext=b"A" * 60_000))
    if kind == "trailing-garbage":
        return _der(base) + b"\x00garbage"
    if kind == "serial-0":  # the builder refuses it: the INTEGER's content byte patched (same length)
        d = _der(base)
        i = d.index(b"\x02\x02\x05\xec")
        return d[:i] + b"\x02\x02\x00\x00" + d[i + 4:]
    if kind == "serial-negative":
        d = _der(base)
        i = d.index(b"\x02\x02\x05\xec")
        return d[:i] + b"\x02\x02\xff\x01" + d[i + 4:]
    raise AssertionError(kind)


KINDS = ("dsa2048", "ed25519", "ed448", "p521", "secp256k1", "rsa512", "rsa8192", "unknown-oid",
         "serial-21-bytes", "serial-0", "serial-negative", "not-after-before-not-before", "year-1950",
         "year-9999", "empty-names", "extension-60k", "trailing-garbage")


def _loaded(d: bytes) -> x509.Certificate | None:
    try:
        return certs.load_cert_der(d)
    except DecodeError:
        return None


def _signer_like(cert: x509.Certificate) -> FileSigner:
    """A usable RSA signer whose header names ``cert``'s serial and issuer: a file TVS's answer (``cert``)
    is about."""
    key = _private("rsa1024")
    assert isinstance(key, rsa.RSAPrivateKey)
    c = (x509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.issuer)
         .public_key(key.public_key()).serial_number(cert.serial_number).not_valid_before(_NB)
         .not_valid_after(_NA).sign(key, hashes.SHA256()))
    return FileSigner(key=key, cert=c)


def _decided(d: Decision | bool) -> None:
    assert isinstance(d, (Decision, bool))


# --------------------------------------------------------------------------- every path, every kind
@pytest.mark.parametrize("kind", KINDS)
def test_tls_peers_are_decided_whatever_they_present(kind: str) -> None:
    """The certificate a TVS, CAPF, HTTPS (6971) server or the SIP-TLS registrar presents: a decision,
    also once TVS vouched for it (TVS answers about exactly that DER: the rules compare bytes)."""
    d = exotic(kind)
    s = with_itl_and_config()
    assert rules.tvs_server_trusted(s, d) is False
    capf = rules.decide_capf_server(s, d, profile=P8861, now=NOW)
    https = rules.decide_https_server(s, d, profile=P8861, now=NOW)
    sip = rules.decide_sip_server(s, d, server="127.0.0.1:5061")
    assert not capf.accepted and not https.accepted and not sip.accepted
    if _loaded(d) is None:  # unreadable (trailing bytes, a serial RFC 5280 forbids): refused, said so
        assert capf.rule == "F.1-capf-server-untrusted" and "unreadable" in capf.reason
        assert https.rule == "E.7.1-https-malformed" and "unreadable" in https.reason
    else:
        assert capf.pending and https.pending
        vouched = rules.decide_capf_server(s, d, profile=P8861, now=NOW, tvs_answer=TvsAnswer(
            cert_der=d, roles=frozenset({Role.CAPF}), ttl=60))
        assert vouched.rule == "F.1-capf-vouched-by-tvs"


@pytest.mark.parametrize("kind", KINDS)
def test_a_tvs_query_answer_returning_it_is_decided(kind: str) -> None:
    """§G.3.4 / §G.4 (c): a QUERY answer returns the certificate as the signer's; the ITL, the config and
    a static file it is asked about are decided — taken only when the certificate is in its validity and
    its key verifies the signature (an odd serial, empty names or a 60 KB extension are no reason to
    refuse), else refused with the reason."""
    d = exotic(kind)
    cert = _loaded(d)
    if cert is None:
        return  # never taken for the signer's (rules._tvs_cert): "TVS does not know the signer"
    signer = _signer_like(cert)
    s = with_itl_and_config()
    answer = TvsAnswer(cert_der=d, roles=frozenset({Role.SAST, Role.CCM_TFTP}), ttl=60)
    new_itl = trustlist.build(kind="ITL", records=[TrustRecord.from_certificate(signer.cert, Role.SAST)],
                              signer=signer, timestamp=NOW + 1)
    cfg = signed.build(body=xml(), filename=CFG + ".sgn", signer=signer, timestamp=NOW)
    static = signed.build(body=b"<x/>", filename="ring.xml.sgn", signer=signer, timestamp=NOW)
    for got in (rules.decide_trust_list(s, new_itl, kind="ITL", profile=P8861, now=NOW, tvs_answer=answer),
                rules.decide_config(s, CFG + ".sgn", cfg, profile=P8861, now=NOW, tvs_answer=answer),
                rules.decide_static_file(s, "ring.xml.sgn", static, profile=P8861, now=NOW,
                                         tvs_answer=answer)):
        if kind in ("serial-21-bytes", "empty-names", "extension-60k"):  # the signer's key, in validity
            assert got.accepted and got.rule.endswith("vouched-by-tvs"), got
            continue
        assert not got.accepted, got  # another key than the signer's, or not in its validity
        assert got.reason_code in (VerifyReason.UNSUPPORTED_KEY, VerifyReason.BAD_SIGNATURE,
                                   VerifyReason.EXPIRED), got


@pytest.mark.parametrize("kind", KINDS)
def test_a_trust_list_record_holding_it_is_decided(kind: str) -> None:
    """An ITL whose SAST, TFTP, TVS, CAPF and APP-SERVER records hold the certificate (downloaded, taken
    on first use): a file its serial and issuer sign, and the TLS peers presenting it, are decided."""
    d = exotic(kind)
    cert = _loaded(d)
    rec = ident("recovery-a")
    recs = [TrustRecord(role=r, subject="CN=exotic", issuer="CN=exotic-ca", serial=b"\x05\xec", certificate=d)
            for r in (Role.SAST, Role.TFTP, Role.TVS, Role.CAPF, Role.APP_SERVER)]
    s = new_store()
    first = rules.decide_trust_list(s, tl("ITL", rec, [rec.record(Role.SAST), *recs]), kind="ITL",
                                    profile=P8861, now=NOW)
    if not first.accepted:  # the 60 KB extension five times over: beyond the trust-list limit
        assert first.rule in ("G.3.1-oversize", "G.3.1-malformed"), first
        return
    s.apply(first)
    signer = _signer_like(cert) if cert is not None else _signer_like(certs.load_cert_der(exotic("p521")))
    new_itl = trustlist.build(kind="ITL", records=[TrustRecord.from_certificate(signer.cert, Role.SAST)],
                              signer=signer, timestamp=NOW + 1)
    cfg = signed.build(body=xml(), filename=CFG + ".sgn", signer=signer, timestamp=NOW)
    for got in (rules.decide_trust_list(s, new_itl, kind="ITL", profile=P8861, now=NOW),
                rules.decide_config(s, CFG + ".sgn", cfg, profile=P8861, now=NOW)):
        assert not got.accepted, got
    _decided(rules.tvs_server_trusted(s, d))
    _decided(rules.decide_capf_server(s, d, profile=P8861, now=NOW))
    _decided(rules.decide_https_server(s, d, profile=P8861, now=NOW))


# --------------------------------------------------------------------------- bug: secp256k1 signers
def test_a_signer_on_a_curve_no_phone_supports_is_refused() -> None:
    """Was an acceptance: a secp256k1 key (no phone curve: CAPF's are P-256, P-384, P-521, spec §F) signed
    an ITL and a config the phone took — through a TVS answer, or a record's certificate — while the same
    key as a record's tag 7 is "no usable key" (keys.decode_record_public_key knows only those curves).
    ``rules._key_problem`` now refuses the curve: G.3-unsupported-key / G.4-unsupported-key."""
    key = _private("secp256k1")
    cert = _cert(key.public_key())
    d = _der(cert)
    signer = FileSigner(key=key, cert=certs.load_cert_der(d))
    new_itl = trustlist.build(kind="ITL", records=[TrustRecord(role=Role.SAST, serial=b"\x05\xec",
                                                               issuer="CN=exotic-ca", certificate=d)],
                              signer=signer, timestamp=NOW + 1)
    cfg = signed.build(body=xml(), filename=CFG + ".sgn", signer=signer, timestamp=NOW)
    s = with_itl_and_config()
    answer = TvsAnswer(cert_der=d, roles=frozenset({Role.SAST, Role.CCM_TFTP}), ttl=60)
    itl_d = rules.decide_trust_list(s, new_itl, kind="ITL", profile=P8861, now=NOW, tvs_answer=answer)
    assert (itl_d.rule, itl_d.accepted, itl_d.reason_code) == \
        ("G.3-unsupported-key", False, VerifyReason.UNSUPPORTED_KEY), itl_d
    assert "secp256k1" in itl_d.reason and "P-256" in itl_d.reason
    cfg_d = rules.decide_config(s, CFG + ".sgn", cfg, profile=P8861, now=NOW, tvs_answer=answer)
    assert (cfg_d.rule, cfg_d.accepted) == ("G.4-unsupported-key", False), cfg_d
    # the same key in an installed record's certificate
    rec = ident("recovery-a")
    s2 = new_store()
    s2.apply(rules.decide_trust_list(s2, tl("ITL", rec, [rec.record(Role.SAST), TrustRecord(
        role=Role.TFTP, serial=b"\x05\xec", issuer="CN=exotic-ca", certificate=d)]), kind="ITL",
        profile=P8861, now=NOW))
    got = rules.decide_config(s2, CFG + ".sgn", cfg, profile=P8861, now=NOW)
    assert (got.rule, got.accepted) == ("G.4-unsupported-key", False), got
    # the NIST curves stay usable (P-521 signs and is taken)
    p521 = _private("p521")
    good = FileSigner(key=p521, cert=_cert(p521.public_key()))
    ok = rules.decide_config(s, CFG + ".sgn", signed.build(body=xml(), filename=CFG + ".sgn", signer=good,
                                                           timestamp=NOW), profile=P8861, now=NOW,
                             tvs_answer=TvsAnswer(cert_der=_der(good.cert), roles=frozenset({Role.TFTP}),
                                                  ttl=60))
    assert ok.accepted and ok.rule == "G.4-vouched-by-tvs", ok


# --------------------------------------------------------------------------- bug: the reason names why
@pytest.mark.parametrize("kind", ["dsa2048", "ed25519", "unknown-oid"])
def test_a_signer_record_whose_certificate_has_no_usable_key_says_why(kind: str) -> None:
    """Was the bare "signer record has no usable key": the record's certificate (downloaded in a CTL/ITL)
    is DSA, Ed25519 or of an unknown key algorithm — the reason now names it, as the TVS path's does."""
    d = exotic(kind)
    rec = ident("recovery-a")
    s = new_store()
    s.apply(rules.decide_trust_list(s, tl("ITL", rec, [rec.record(Role.SAST), *[TrustRecord(
        role=r, serial=b"\x05\xec", issuer="CN=exotic-ca", certificate=d) for r in (Role.SAST, Role.TFTP)]]),
        kind="ITL", profile=P8861, now=NOW))
    signer = _signer_like(certs.load_cert_der(d))
    cfg = rules.decide_config(s, CFG + ".sgn", signed.build(body=xml(), filename=CFG + ".sgn", signer=signer,
                                                            timestamp=NOW), profile=P8861, now=NOW)
    new_itl = trustlist.build(kind="ITL", records=[TrustRecord.from_certificate(signer.cert, Role.SAST)],
                              signer=signer, timestamp=NOW + 1)
    itl = rules.decide_trust_list(s, new_itl, kind="ITL", profile=P8861, now=NOW)
    for got in (cfg, itl):
        assert not got.accepted and got.reason_code is VerifyReason.UNSUPPORTED_KEY, got
        assert got.reason.startswith("signer record has no usable key: ")
        assert ("neither RSA nor EC" in got.reason) or ("1.2.840.113549.1.1.9" in got.reason), got


# --------------------------------------------------------------------------- bug: phoneemu tvs
@pytest.mark.parametrize("kind", ["dsa2048", "ed25519", "ed448", "unknown-oid"])
def test_tvs_command_does_not_call_an_answer_with_an_unusable_key_valid(kind: str) -> None:
    """Was "answer valid ... returns CN=exotic" (exit 0, "vouches"): a QUERY answer returning the signer's
    certificate with a key no phone can verify with — the phone refuses that signer (G.3-unsupported-key,
    G.4-unsupported-key). ``phoneemu tvs`` now says it does not vouch (valid False, the problem named)."""
    d = exotic(kind)
    request = tvs.query_request(7, "CP-8861-SEP001122334455", "CN=exotic", "CN=exotic-ca", b"\x05\xec")
    resp = tvs.TvsResponse.from_message(tvs.decode(tvs.encode(tvs.response(
        request, status=0, roles=(Role.SAST, Role.CCM_TFTP), ttl=3600, certificate=d))))
    key = rules.QueryKey(subject="CN=exotic", issuer="CN=exotic-ca", serial=b"\x05\xec")
    a = tvs_cmd._answer(resp, key)
    assert a["valid"] is False and a["certificate"] == "CN=exotic"
    assert a["problem"].startswith("the certificate returned has no key a phone can verify a signer with")
    assert "mismatch" not in a
    doc = {"request": "QUERY", "server": "127.0.0.1:2445", "about": "certificate", "subject": key.subject,
           "issuer": key.issuer, "serial": key.serial.hex(), "tls": "TLSv1.3", "server_certificate": None,
           "answer": a}
    assert "a phone cannot use it" in tvs_cmd._text(doc)
    assert tvs_cmd._verdict(doc).startswith("does NOT vouch")
    assert not tvs_cmd._vouches(doc)
    # a VERIFY answer is not about a signer: its certificate's key is not judged
    assert tvs_cmd._answer(resp, None)["valid"] is True
    # a usable certificate still vouches
    good = _der(_cert(_private("rsa1024").public_key()))
    ok = tvs.TvsResponse.from_message(tvs.decode(tvs.encode(tvs.response(
        request, status=0, roles=(Role.SAST,), ttl=3600, certificate=good))))
    assert tvs_cmd._answer(ok, key)["valid"] is True


# --------------------------------------------------------------------------- bug: an LSC over 16 KiB
def test_an_lsc_capf_issued_is_loaded_back_from_flash_whatever_its_size(tmp_path: Path) -> None:
    """Was a lost LSC: a CAPF server may issue an LSC up to what its CERTIFICATE element carries (16-bit
    length, spec §F.4) — here 20 KB with a large extension, for the phone's own key; the phone installed
    it (F.6-lsc-installed) and saved it, but its flash read back at most 16384 bytes of ``lsc.der``: the
    next load dropped it ("larger than 16384 bytes; not loaded") and the phone ran without its LSC."""
    key = generate_key(KeySpec.parse("rsa1024"), unsafe_seed="net-cert-audit-phone")
    lsc = _der(_cert(key.public_key(), subject="SEP001122334455", ext=b"L" * 20_000))
    assert 16_384 < len(lsc) < 0xFFFF
    # what the phone's CAPF client does with it: stored (the key is the one it generated)
    from phoneemu.protocols import capf
    session = capf.CapfClientSession(device_name="SEP001122334455", auth_string="", auth_mode=0)
    session.session_id, session._new_key = 1, key
    reply = session._on_store(session._msg(capf.CapfCommand.STORE_CERTIFICATE_REQUEST, (
        capf.CapfTag.CERTIFICATE, capf.encode_certificate(lsc, capf.CertType.LSC))))
    assert reply.get(capf.CapfTag.REASON) == bytes([capf.Reason.SUCCESS]) and session._stored == lsc
    store = new_store()
    store.lsc = Credential.of_der(lsc, key)
    flash = Flash(tmp_path / "flash", profile=P8861)
    flash.save(store)
    back = flash.load()
    assert flash.problems == []
    assert back.lsc is not None and back.lsc.cert_der == lsc


def test_exotic_kinds_load_as_expected() -> None:
    """The fixtures are what they say: the RFC 5280 violations and the trailing bytes do not load (a
    DecodeError, never another exception), the others do."""
    for kind in KINDS:
        try:
            certs.load_cert_der(exotic(kind))
        except PhoneEmuError:
            assert kind in ("serial-0", "serial-negative", "trailing-garbage"), kind
        else:
            assert kind not in ("serial-0", "serial-negative", "trailing-garbage"), kind
