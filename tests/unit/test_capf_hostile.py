"""The phone's CAPF client against a hostile or broken CAPF server (spec §F), sans-I/O.

Each test scripts the server's frames by hand (a server the phone decided to trust, §F.1, that
misbehaves) and checks the phone's outcome: no traceback other than the session's own ProtocolError /
DecodeError, a clear reason, and never an LSC the phone cannot use or should not hold.
"""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from phoneemu.crypto.certs import CertRequest, cert_der, issue_certificate
from phoneemu.crypto.keys import KeySpec, PrivateKey, generate_key, load_public_key_spki_der
from phoneemu.errors import DecodeError, ProtocolError
from phoneemu.phone.flash import Flash
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import Credential, InternCache, TrustStore
from phoneemu.protocols import capf
from phoneemu.protocols.capf import CapfClientSession, CapfCommand, CapfMessage, CapfTag, CertType
from tests.signer_helpers import capf_ca

C = CapfCommand
T = CapfTag
SID = 0x0A0B0C0D
DEVICE = "SEP001122334455"
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
P256 = ((T.KEY_TYPE, b"\x01"), (T.CURVE, b"\x00"))


@pytest.fixture(scope="module")
def ca() -> tuple[PrivateKey, x509.Certificate]:
    return capf_ca("CN=CAPF-lab;O=Lab", NOW)


def lsc_for(ca: tuple[PrivateKey, x509.Certificate], spki: bytes, *, days: tuple[int, int] = (-1, 365),
            is_ca: bool = False, key_usage: tuple[str, ...] = ("digital_signature", "key_encipherment"),
            san_uri: tuple[str, ...] = ()) -> bytes:
    req = CertRequest(subject=f"CN={DEVICE};O=Lab", public_key=load_public_key_spki_der(spki), serial=99,
                      not_before=NOW + dt.timedelta(days=days[0]), not_after=NOW + dt.timedelta(days=days[1]),
                      ca=is_ca, key_usage=key_usage, san_uri=san_uri)
    return cert_der(issue_certificate(req, issuer_key=ca[0], issuer=ca[1]))


def msg(command: int, *elements: tuple[int, bytes], sid: int = SID) -> bytes:
    return capf.encode(capf.message(command, sid, *elements))


def feed(phone: CapfClientSession, frame: bytes) -> list[CapfMessage]:
    return [capf.decode(f) for f in phone.receive(frame)]


def authenticated(**kw: object) -> CapfClientSession:
    phone = CapfClientSession(device_name=DEVICE, **kw)  # type: ignore[arg-type]
    (resp,) = feed(phone, msg(C.AUTH_REQUEST, (T.VERSION, b"\x03"), (T.AUTH_TYPE, b"\x02")))
    assert resp.command == C.AUTH_RESPONSE
    return phone


def keygen(phone: CapfClientSession, *elements: tuple[int, bytes]) -> CapfMessage:
    (resp,) = feed(phone, msg(C.KEY_GENERATE_REQUEST, *(elements or P256)))
    assert resp.command == C.KEY_GENERATE_RESPONSE
    return resp


def store(phone: CapfClientSession, der: bytes, end_reason: int = 1) -> capf.CapfResult:
    """STORE ``der``, then END_SESSION ``end_reason`` whatever the phone answered (a hostile server)."""
    (resp,) = feed(phone, msg(C.STORE_CERTIFICATE_REQUEST, (T.CERTIFICATE_TYPE, b"\x01"),
                              (T.CERTIFICATE, capf.encode_certificate(der, CertType.LSC))))
    assert resp.command == C.STORE_CERTIFICATE_RESPONSE
    assert feed(phone, msg(C.END_SESSION, (T.REASON, bytes([end_reason])))) == []
    assert phone.result is not None
    return phone.result


def install(ca: tuple[PrivateKey, x509.Certificate], phone: CapfClientSession, **lsc_kw: object
            ) -> capf.CapfResult:
    spki = keygen(phone).require(T.PUBLIC_KEY)
    return store(phone, lsc_for(ca, spki, **lsc_kw))  # type: ignore[arg-type]


# --- the certificate the server returns ------------------------------------------------------------

def test_an_honest_lsc_is_installed_with_the_fresh_key(ca: tuple[PrivateKey, x509.Certificate]) -> None:
    phone = authenticated()
    r = install(ca, phone)
    assert r.outcome == "installed" and r.key is not None and r.certificate is not None


def test_an_lsc_binding_another_key_is_refused_even_if_the_server_claims_success(
        ca: tuple[PrivateKey, x509.Certificate]) -> None:
    phone = authenticated()
    keygen(phone)
    other = generate_key(KeySpec(kind="ec", curve="p256")).public_key()
    spki = other.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    r = store(phone, lsc_for(ca, spki))
    assert r.outcome == "rejected" and r.certificate is None and r.key is None
    assert "public key is not the key the phone generated" in r.detail


def test_an_lsc_from_an_unknown_issuer_is_installed_the_issuer_is_not_checked() -> None:
    """§F says nothing of the phone checking the LSC's issuer (CAPF or an online CA may issue it, F.9);
    the phone trusted the CAPF server itself (§F.1). Documented behaviour: installed."""
    stranger = generate_key(KeySpec(kind="ec", curve="p256"))
    req = CertRequest(subject="CN=Stranger", public_key=stranger.public_key(), serial=5,
                      not_before=NOW - dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=30), ca=True)
    phone = authenticated()
    r = install((stranger, issue_certificate(req, issuer_key=stranger)), phone)
    assert r.outcome == "installed"


@pytest.mark.parametrize(("days", "why"), [((-400, -1), "expired"), ((2, 400), "not valid before")])
def test_an_lsc_outside_its_validity_is_refused(ca: tuple[PrivateKey, x509.Certificate],
                                                days: tuple[int, int], why: str) -> None:
    phone = authenticated(now=NOW)
    r = install(ca, phone, days=days)
    assert r.outcome == "rejected" and r.certificate is None and why in r.detail


def test_a_ca_certificate_as_lsc_is_refused(ca: tuple[PrivateKey, x509.Certificate]) -> None:
    phone = authenticated()
    r = install(ca, phone, is_ca=True, key_usage=("key_cert_sign", "crl_sign", "digital_signature"))
    assert r.outcome == "rejected" and r.certificate is None
    assert "CA certificate" in r.detail


def test_an_end_entity_lsc_that_may_sign_certificates_is_refused(ca: tuple[PrivateKey, x509.Certificate]
                                                                 ) -> None:
    phone = authenticated()
    r = install(ca, phone, key_usage=("digital_signature", "key_cert_sign"))
    assert r.outcome == "rejected" and "keyUsage" in r.detail


@pytest.mark.parametrize("blob", [b"", b"not a certificate", b"\x30\x03\x02\x01\x01", b"\x30" * 300])
def test_a_non_x509_blob_is_refused(blob: bytes) -> None:
    phone = authenticated()
    keygen(phone)
    r = store(phone, blob)
    assert r.outcome == "rejected" and r.certificate is None and "the phone refused the LSC" in r.detail


def test_a_broken_certificate_wrapper_fails_the_session_without_installing() -> None:
    phone = authenticated()
    keygen(phone)
    bad = capf.encode_certificate(b"x" * 10)[:-3]  # inner length says more than follows
    with pytest.raises(DecodeError, match="inner length"):
        phone.receive(msg(C.STORE_CERTIFICATE_REQUEST, (T.CERTIFICATE, bad)))
    assert phone.failed and phone.result is None


def test_a_large_lsc_is_installed_and_survives_the_flash(ca: tuple[PrivateKey, x509.Certificate],
                                                         tmp_path: Path) -> None:
    """A 40 KB LSC (over 16 KiB: many SAN URIs) binding the phone's key: nothing in §F limits its size
    below what the CERTIFICATE element carries; the flash keeps certificates up to 64 KiB."""
    phone = authenticated()
    uris = tuple(f"urn:x-lab:{i:05d}:{'a' * 60}" for i in range(500))
    r = install(ca, phone, san_uri=uris)
    assert r.outcome == "installed" and r.certificate is not None and len(r.certificate) > 16384
    assert r.key is not None
    prof = get_profile("cp-8861")
    flash = Flash(tmp_path / "flash", profile=prof)
    s = TrustStore(profile=prof, intern=InternCache())
    s.lsc = Credential.of_der(r.certificate, r.key)
    flash.save(s)
    back = Flash(tmp_path / "flash", profile=prof).load()
    assert back.lsc is not None and back.lsc.cert_der == r.certificate


def test_an_lsc_too_large_for_the_element_cannot_even_be_framed() -> None:
    with pytest.raises(capf.EncodeError):
        capf.encode_certificate(b"\0" * 0xFFFF)


# --- the key request -------------------------------------------------------------------------------

@pytest.mark.parametrize(("elements", "kw", "why"), [
    (((T.KEY_TYPE, b"\x00"), (T.KEY_SIZE, (4096).to_bytes(2, "big"))), {"max_rsa_bits": 2048},
     "exceeds this phone's limit of 2048"),
    (((T.KEY_TYPE, b"\x00"), (T.KEY_SIZE, (65535).to_bytes(2, "big"))), {}, "RSA 65535 exceeds"),
    (((T.KEY_TYPE, b"\x00"), (T.KEY_SIZE, (16).to_bytes(2, "big"))), {}, "unsupported RSA size"),
    (P256, {"ec_support": False}, "no EC keys"),
    (((T.KEY_TYPE, b"\x01"), (T.CURVE, b"\x07")), {}, "unknown curve code 7"),
    (((T.KEY_TYPE, b"\x05"),), {}, "unknown key type 5"),
])
def test_a_key_the_phone_cannot_make_is_refused(elements: tuple[tuple[int, bytes], ...],
                                                kw: dict[str, object], why: str) -> None:
    phone = authenticated(**kw)
    resp = keygen(phone, *elements)
    assert resp.get(T.PUBLIC_KEY) is None and resp.get(T.REASON) == b"\x07"
    r = store(phone, b"whatever")
    assert r.outcome == "rejected" and why in r.detail


def test_every_enrolment_generates_a_fresh_key() -> None:
    seen = {authenticated().receive(msg(C.KEY_GENERATE_REQUEST, *P256))[0] for _ in range(3)}
    assert len(seen) == 3


def _private_bytes(key: PrivateKey) -> list[bytes]:
    if isinstance(key, rsa.RSAPrivateKey):
        n = key.private_numbers()
        return [v.to_bytes((v.bit_length() + 7) // 8, "big") for v in (n.d, n.p, n.q)]
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    v = key.private_numbers().private_value
    return [v.to_bytes((v.bit_length() + 7) // 8, "big")]


@pytest.mark.parametrize("then", [C.FETCH_CERTIFICATE_REQUEST, C.DECRYPT_REQUEST, C.ENCRYPT_REQUEST,
                                  C.SIGN_CERTIFICATE_REQUEST, C.STATUS_REQUEST, C.ABORT_REQUEST])
def test_the_private_key_never_leaves_the_phone(ca: tuple[PrivateKey, x509.Certificate],
                                                then: CapfCommand) -> None:
    """Install, then a second session asks to fetch (or anything else): only the LSC ever goes out."""
    wire: list[bytes] = []
    phone = authenticated()
    sent = phone.receive(msg(C.KEY_GENERATE_REQUEST, *P256))
    wire += sent
    (resp,) = [capf.decode(f) for f in sent]
    r = store(phone, lsc_for(ca, resp.require(T.PUBLIC_KEY)))
    assert r.outcome == "installed" and r.key is not None and r.certificate is not None
    again = CapfClientSession(device_name=DEVICE, current_lsc=r.certificate)
    wire += again.receive(msg(C.AUTH_REQUEST, (T.AUTH_TYPE, b"\x00")))
    if then == C.FETCH_CERTIFICATE_REQUEST:
        sent = again.receive(msg(then))
        wire += sent
        (fetched,) = [capf.decode(f) for f in sent]
        assert capf.decode_certificate(fetched.require(T.CERTIFICATE))[1] == r.certificate
    else:
        with pytest.raises(ProtocolError, match="unexpected"):
            again.receive(msg(then, (T.CERTIFICATE, capf.encode_certificate(r.certificate))))
    blob = b"".join(wire)
    for secret in _private_bytes(r.key):
        assert secret not in blob


# --- sequencing --------------------------------------------------------------------------------------

def test_store_before_authentication_is_a_protocol_error() -> None:
    phone = CapfClientSession(device_name=DEVICE)
    with pytest.raises(ProtocolError,
                       match="unexpected STORE_CERTIFICATE_REQUEST in state 'wait-auth-request'"):
        phone.receive(msg(C.STORE_CERTIFICATE_REQUEST, (T.CERTIFICATE, capf.encode_certificate(b"x"))))
    assert phone.result is None


def test_store_without_key_generation_is_a_protocol_error() -> None:
    phone = authenticated()
    with pytest.raises(ProtocolError, match="unexpected STORE_CERTIFICATE_REQUEST"):
        phone.receive(msg(C.STORE_CERTIFICATE_REQUEST, (T.CERTIFICATE, capf.encode_certificate(b"x"))))
    assert phone.result is None


def test_success_without_a_store_installs_nothing() -> None:
    phone = authenticated()
    keygen(phone)
    feed(phone, msg(C.END_SESSION, (T.REASON, b"\x01")))
    assert phone.result is not None and phone.result.outcome == "rejected" and phone.result.key is None


@pytest.mark.parametrize("replay", ["auth", "keygen", "store", "delete-after-keygen", "fetch-after-store"])
def test_replays_and_second_operations_are_protocol_errors(ca: tuple[PrivateKey, x509.Certificate],
                                                           replay: str) -> None:
    phone = authenticated()
    spki = keygen(phone).require(T.PUBLIC_KEY)
    st = msg(C.STORE_CERTIFICATE_REQUEST, (T.CERTIFICATE, capf.encode_certificate(lsc_for(ca, spki))))
    frame = {"auth": msg(C.AUTH_REQUEST, (T.AUTH_TYPE, b"\x00")),
             "keygen": msg(C.KEY_GENERATE_REQUEST, *P256), "store": st,
             "delete-after-keygen": msg(C.DELETE_CERTIFICATE_REQUEST),
             "fetch-after-store": msg(C.FETCH_CERTIFICATE_REQUEST)}[replay]
    if replay in ("store", "fetch-after-store"):
        feed(phone, st)
    with pytest.raises(ProtocolError, match="unexpected"):
        phone.receive(frame)
    assert phone.result is None and phone.failed


def test_a_session_id_change_is_a_protocol_error() -> None:
    phone = authenticated()
    with pytest.raises(ProtocolError, match=f"session id {SID + 1}, expected {SID}"):
        phone.receive(msg(C.KEY_GENERATE_REQUEST, *P256, sid=SID + 1))
    assert phone.result is None


@pytest.mark.parametrize("end", [(T.REASON, b"\xc8"), (T.REASON, b"\x00"), (T.REASON, b"\x07")])
def test_an_end_other_than_success_installs_nothing(ca: tuple[PrivateKey, x509.Certificate],
                                                    end: tuple[int, bytes]) -> None:
    phone = authenticated()
    spki = keygen(phone).require(T.PUBLIC_KEY)
    feed(phone, msg(C.STORE_CERTIFICATE_REQUEST, (T.CERTIFICATE, capf.encode_certificate(lsc_for(ca, spki)))))
    feed(phone, msg(C.END_SESSION, end))
    assert phone.result is not None and phone.result.outcome == "rejected" and phone.result.key is None
    assert f"reason {end[1][0]}" in phone.result.detail or "failure" in phone.result.detail


def test_an_end_without_reason_or_with_a_long_reason() -> None:
    phone = authenticated()
    feed(phone, msg(C.END_SESSION))
    assert phone.result is not None and phone.result.outcome == "rejected"
    phone = authenticated()
    with pytest.raises(DecodeError, match="expected 1"):
        phone.receive(msg(C.END_SESSION, (T.REASON, b"\x01\x01")))


def test_a_delete_is_followed_when_the_phone_has_an_lsc_and_refused_when_it_has_none() -> None:
    """The phone does not know which operation CUCM has pending (only ``capfAuthMode``): a delete asked
    by a trusted server is followed (§F.6); without an LSC it answers REASON 7."""
    phone = authenticated(current_lsc=b"old-lsc")
    (resp,) = feed(phone, msg(C.DELETE_CERTIFICATE_REQUEST))
    assert resp.get(T.REASON) == b"\x01"
    feed(phone, msg(C.END_SESSION, (T.REASON, b"\x01")))
    assert phone.result is not None and phone.result.outcome == "deleted"
    phone = authenticated()
    (resp,) = feed(phone, msg(C.DELETE_CERTIFICATE_REQUEST))
    assert resp.get(T.REASON) == b"\x07"
    feed(phone, msg(C.END_SESSION, (T.REASON, b"\x01")))
    assert phone.result is not None and phone.result.outcome == "rejected"


def test_the_session_accepts_a_bounded_number_of_frames() -> None:
    """A server that never stops talking: after END_SESSION every frame is an error, and before it the
    phone takes at most AUTH_REQUEST, one operation (two frames for an install) and END_SESSION."""
    phone = authenticated()
    keygen(phone)
    for _ in range(3):
        with pytest.raises(ProtocolError):
            phone.receive(msg(C.KEY_GENERATE_REQUEST, *P256))
    phone = authenticated()
    feed(phone, msg(C.END_SESSION, (T.REASON, b"\x00")))
    with pytest.raises(ProtocolError, match="after the session ended"):
        phone.receive(msg(C.END_SESSION, (T.REASON, b"\x00")))


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(capf.EncodeError, match="timezone-aware"):
        CapfClientSession(device_name=DEVICE, now=dt.datetime(2026, 1, 1))


def test_the_lsc_key_is_written_0600(ca: tuple[PrivateKey, x509.Certificate], tmp_path: Path) -> None:
    phone = authenticated()
    r = install(ca, phone)
    assert r.certificate is not None and r.key is not None
    prof = get_profile("cp-8861")
    s = TrustStore(profile=prof, intern=InternCache())
    s.lsc = Credential.of_der(r.certificate, r.key)
    Flash(tmp_path / "flash", profile=prof).save(s)
    assert stat.S_IMODE((tmp_path / "flash" / "lsc.key").stat().st_mode) == 0o600
