"""The phone's CAPF client (sans-I/O) against a hostile CAPF server (spec §F): a key size the phone's key
generator cannot make (RSA 512, a §F.8 size), an LSC for another device, and elements the phone acts on
given twice each end with a clear reason and nothing installed."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from phoneemu.crypto.certs import CertRequest, cert_der, issue_certificate
from phoneemu.crypto.keys import PrivateKey, load_public_key_spki_der
from phoneemu.errors import DecodeError
from phoneemu.protocols import capf
from phoneemu.protocols.capf import CapfClientSession, CapfCommand, CapfResult, CapfTag
from tests.signer_helpers import capf_ca

C = CapfCommand
T = CapfTag
SID = 0x0C0FFEE0
DEVICE = "SEP0011223344B2"
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
P256 = ((T.KEY_TYPE, b"\x01"), (T.CURVE, b"\x00"))


@pytest.fixture(scope="module")
def ca() -> tuple[PrivateKey, x509.Certificate]:
    return capf_ca("CN=CAPF-red-team", NOW)


def msg(command: int, *elements: tuple[int, bytes]) -> bytes:
    return capf.encode(capf.message(command, SID, *elements))


def authenticated() -> CapfClientSession:
    phone = CapfClientSession(device_name=DEVICE, auth_mode=2, now=NOW)
    assert [capf.decode(f).command for f in phone.receive(msg(C.AUTH_REQUEST, (T.AUTH_TYPE, b"\x02")))] == [
        C.AUTH_RESPONSE]
    return phone


def keygen_spki(phone: CapfClientSession) -> bytes:
    (resp,) = [capf.decode(f) for f in phone.receive(msg(C.KEY_GENERATE_REQUEST, *P256))]
    return resp.require(T.PUBLIC_KEY)


def lsc(ca: tuple[PrivateKey, x509.Certificate], spki: bytes, subject: str,
        san_uri: tuple[str, ...] = ()) -> bytes:
    req = CertRequest(subject=subject, public_key=load_public_key_spki_der(spki), serial=77,
                      not_before=NOW - dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=365),
                      key_usage=("digital_signature", "key_encipherment"), san_uri=san_uri)
    return cert_der(issue_certificate(req, issuer_key=ca[0], issuer=ca[1]))


def store_then_success(phone: CapfClientSession, der: bytes) -> tuple[bytes | None, CapfResult]:
    """STORE ``der``, then END_SESSION {REASON=1} whatever the phone answered: (its REASON, the result)."""
    (resp,) = [capf.decode(f) for f in phone.receive(
        msg(C.STORE_CERTIFICATE_REQUEST, (T.CERTIFICATE, capf.encode_certificate(der))))]
    assert phone.receive(msg(C.END_SESSION, (T.REASON, b"\x01"))) == []
    assert phone.result is not None
    return resp.get(T.REASON), phone.result


# --- a key the phone's generator cannot make --------------------------------------------------------

def test_rsa_512_a_cucm_size_the_key_generator_cannot_make_is_refused_not_raised() -> None:
    """§F.8 lists 512; cryptography refuses RSA keys under 1024 bits (a ValueError): the phone answers
    KEY_GENERATE_RESPONSE {REASON=7} and says why (was: the ValueError out of the session and the boot)."""
    phone = authenticated()
    (resp,) = [capf.decode(f) for f in phone.receive(
        msg(C.KEY_GENERATE_REQUEST, (T.KEY_TYPE, b"\x00"), (T.KEY_SIZE, (512).to_bytes(2, "big"))))]
    assert resp.command == C.KEY_GENERATE_RESPONSE
    assert resp.get(T.PUBLIC_KEY) is None and resp.get(T.REASON) == b"\x07"
    assert not phone.key_generated
    phone.receive(msg(C.END_SESSION, (T.REASON, b"\x07")))
    assert phone.result is not None and phone.result.outcome == "rejected" and phone.result.key is None
    assert "cannot make RSA 512" in phone.result.detail


def test_a_key_generator_refusing_a_curve_is_a_refusal_too() -> None:
    def no_p521(kind: str, bits: int, curve: str | None) -> PrivateKey:
        raise ValueError(f"no {curve} on this hardware")

    phone = CapfClientSession(device_name=DEVICE, auth_mode=2, generate_key=no_p521)
    phone.receive(msg(C.AUTH_REQUEST, (T.AUTH_TYPE, b"\x02")))
    (resp,) = [capf.decode(f) for f in phone.receive(
        msg(C.KEY_GENERATE_REQUEST, (T.KEY_TYPE, b"\x01"), (T.CURVE, b"\x02")))]
    assert resp.get(T.REASON) == b"\x07" and resp.get(T.PUBLIC_KEY) is None
    phone.receive(msg(C.END_SESSION, (T.REASON, b"\x07")))
    assert phone.result is not None and "cannot make EC p521: no p521 on this hardware" in phone.result.detail


# --- an LSC for another device -----------------------------------------------------------------------

def test_an_lsc_naming_another_device_is_refused_despite_a_success_end(ca: tuple[PrivateKey, x509.Certificate]
                                                                       ) -> None:
    """It binds the key the phone just generated, but names SEP0011223344FF: not installed (§F.9; the
    lab's CAPF would refuse it for authentication by certificate)."""
    phone = authenticated()
    other = "SEP0011223344FF"
    reason, result = store_then_success(phone, lsc(ca, keygen_spki(phone), f"CN={other};O=Lab", (other,)))
    assert reason == b"\x07"
    assert result.outcome == "rejected" and result.certificate is None and result.key is None
    assert "names another device" in result.detail and other in result.detail and DEVICE in result.detail


@pytest.mark.parametrize(("subject", "san"), [
    (f"CN={DEVICE};O=Lab", ()),  # capfd's
    (f"serialNumber=PID:CP-8861 SN:FCH1;CN=CP-8861-{DEVICE}", ()),  # a CUCM LSC's (§F.9)
    ("CN=lsc;O=Lab", (DEVICE,)),  # a SAN URI naming the device
])
def test_an_lsc_naming_this_device_as_cucm_or_capfd_do_is_installed(
        ca: tuple[PrivateKey, x509.Certificate], subject: str, san: tuple[str, ...]) -> None:
    phone = authenticated()
    reason, result = store_then_success(phone, lsc(ca, keygen_spki(phone), subject, san))
    assert reason == b"\x01" and result.outcome == "installed" and result.key is not None


def test_a_name_only_ending_in_the_device_name_is_another_device(
        ca: tuple[PrivateKey, x509.Certificate]) -> None:
    phone = authenticated()
    _reason, result = store_then_success(phone, lsc(ca, keygen_spki(phone), f"CN=X{DEVICE}"))
    assert result.outcome == "rejected" and "names another device" in result.detail


# --- elements given twice -------------------------------------------------------------------------------

def test_end_session_with_two_reasons_is_an_error_naming_both_offsets() -> None:
    """END_SESSION {REASON=7, REASON=1}: a server reading the last would think 'success' where the phone
    read the first (was: the first taken, silently)."""
    phone = authenticated()
    with pytest.raises(DecodeError) as info:
        phone.receive(msg(C.END_SESSION, (T.REASON, b"\x07"), (T.REASON, b"\x01")))
    assert "END_SESSION carries REASON twice (at offsets 8 and 12 of the frame)" in info.value.message
    assert info.value.offset == 12 and info.value.tag == T.REASON
    assert phone.failed and phone.result is None


def test_a_store_with_two_certificates_installs_neither(ca: tuple[PrivateKey, x509.Certificate]) -> None:
    phone = authenticated()
    der = lsc(ca, keygen_spki(phone), f"CN={DEVICE}")
    with pytest.raises(DecodeError, match="carries CERTIFICATE twice"):
        phone.receive(msg(C.STORE_CERTIFICATE_REQUEST, (T.CERTIFICATE, capf.encode_certificate(der)),
                          (T.CERTIFICATE, capf.encode_certificate(der))))
    with pytest.raises(DecodeError):  # the session stays failed: a success END installs nothing
        phone.receive(msg(C.END_SESSION, (T.REASON, b"\x01")))
    assert phone.result is None


def test_a_key_request_with_two_key_types_is_refused_before_any_key_is_made() -> None:
    phone = authenticated()
    with pytest.raises(DecodeError, match="KEY_GENERATE_REQUEST carries KEY_TYPE twice"):
        phone.receive(msg(C.KEY_GENERATE_REQUEST, (T.KEY_TYPE, b"\x00"), (T.KEY_TYPE, b"\x01"),
                          (T.CURVE, b"\x00"), (T.KEY_SIZE, (2048).to_bytes(2, "big"))))
    assert not phone.key_generated


def test_elements_the_phone_does_not_act_on_may_repeat() -> None:
    phone = authenticated()
    phone.receive(msg(C.END_SESSION, (T.REASON_INFO, b"a\0"), (T.REASON_INFO, b"b\0"), (99, b""), (99, b"x"),
                      (T.REASON, b"\x00")))
    assert phone.result is not None and phone.result.outcome == "nothing-pending"
