"""A hostile CAPF server's STORE of an LSC the phone could never present (spec §F.2, §F.7; ours).

The STORE frame carries a few hundred bytes more of certificate than an AUTH_RESPONSE presenting it with
its signed data: such an LSC, once installed, made every later session by certificate (capfAuthMode 3,
LSC first) fail before a byte was sent — an EncodeError in the phone, on every retry. The phone refuses
it at STORE (REASON 7) and keeps what it had; an LSC that fits is installed and presented.
"""

from __future__ import annotations

import pytest
from cryptography import x509

from phoneemu.protocols import capf
from phoneemu.protocols.capf import MAX_BODY, AuthType, CapfClientSession, CertType
from tests.unit import test_capf_hostile
from tests.unit.test_capf_hostile import (
    DEVICE,
    NOW,
    C,
    PrivateKey,
    T,
    authenticated,
    feed,
    keygen,
    lsc_for,
    msg,
    store,
)


@pytest.fixture(scope="module")
def ca() -> tuple[PrivateKey, x509.Certificate]:
    return test_capf_hostile.ca.__wrapped__()  # type: ignore[attr-defined, no-any-return]  # its fixture


def _lsc_of_size(ca: tuple[PrivateKey, x509.Certificate], spki: bytes, size: int) -> bytes:
    """An LSC for ``spki`` of about ``size`` bytes (SAN URIs as padding; bounded loop)."""
    uris: tuple[str, ...] = ()
    der = lsc_for(ca, spki)
    for _ in range(8):
        missing = size - len(der)
        if abs(missing) < 40:
            return der
        count = max(len(uris) + missing // 64, 0)
        uris = tuple(f"urn:x-lab:{i:05d}:{'a' * 46}" for i in range(count))
        der = lsc_for(ca, spki, san_uri=uris)
    return der


def test_an_lsc_too_large_to_present_is_refused(ca: tuple[PrivateKey, x509.Certificate]) -> None:
    phone = authenticated()
    spki = keygen(phone).require(T.PUBLIC_KEY)
    der = _lsc_of_size(ca, spki, MAX_BODY - 150)  # fits STORE, not an AUTH_RESPONSE with P-256 signatures
    store_frame = capf.encode(capf.message(C.STORE_CERTIFICATE_REQUEST, 1, (T.CERTIFICATE_TYPE, b"\x01"),
                                           (T.CERTIFICATE, capf.encode_certificate(der, CertType.LSC))))
    assert len(store_frame) <= capf.MAX_FRAME  # the server can send it
    r = store(phone, der)
    assert r.outcome == "rejected" and r.certificate is None and r.key is None
    assert "too large to present for CAPF authentication by certificate" in r.detail
    assert f"at {len(der)} bytes" in r.detail


def test_a_large_lsc_that_fits_is_installed_and_presented(ca: tuple[PrivateKey, x509.Certificate]) -> None:
    phone = authenticated()
    spki = keygen(phone).require(T.PUBLIC_KEY)
    der = _lsc_of_size(ca, spki, MAX_BODY - 400)
    r = store(phone, der)
    assert r.outcome == "installed" and r.certificate == der and r.key is not None
    again = CapfClientSession(device_name=DEVICE, auth_mode=AuthType.LSC, cert_der=der, cert_key=r.key,
                              current_lsc=der, now=NOW)
    (resp,) = feed(again, msg(C.AUTH_REQUEST, (T.VERSION, b"\x03"), (T.AUTH_TYPE, b"\x03")))
    assert resp.command == C.AUTH_RESPONSE
    assert capf.decode_certificate(resp.require(T.CERTIFICATE)) == (CertType.LSC, der)
