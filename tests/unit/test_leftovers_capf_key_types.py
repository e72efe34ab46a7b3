"""CapfServerSession (sans-I/O): a phone certificate — or SUDI certificate — whose key is DSA or Ed25519
fails the authentication (END_SESSION REASON 7, outcome ``bad-auth``); before, a DecodeError failed the
session (spec §F.6 "bad password / bad data", §F.8 key types)."""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ed25519
from cryptography.x509.oid import NameOID

from phoneemu.protocols import capf
from phoneemu.protocols.capf import AuthType, CapfClientSession
from tests.unit.test_capf import DEVICE, Pki, pki, run, server

__all__ = ["pki"]  # the fixture, imported for these tests


def odd_key_cert(kind: str, signer: Any) -> bytes:
    """A certificate for DEVICE with a ``kind`` (dsa | ed25519) key, signed by ``signer``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cryptography >= 51 deprecates DSA (tests only)
        public: Any = (dsa.generate_private_key(key_size=2048).public_key() if kind == "dsa"
                       else ed25519.Ed25519PrivateKey.generate().public_key())
        now = dt.datetime.now(dt.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DEVICE)])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
                .serial_number(99).not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=30)).sign(signer, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("kind", ["dsa", "ed25519"])
def test_a_certificate_with_a_dsa_or_ed25519_key_fails_the_authentication(pki: Pki, kind: str) -> None:
    s = server(pki, operation="install", auth_mode=AuthType.MIC, key_type="ec")
    c = CapfClientSession(device_name=DEVICE, cert_der=odd_key_cert(kind, pki.mic_key), cert_key=pki.mic_key)
    run(s, c)
    assert s.error is None and s.done
    assert s.result is not None and s.result.outcome == "bad-auth" and s.result.reason == capf.Reason.FAILURE
    assert "neither RSA nor EC" in s.result.detail and "spec §F.8" in s.result.detail
    assert c.result is not None and c.result.outcome == "rejected" and c.result.reason == capf.Reason.FAILURE


@pytest.mark.parametrize("kind", ["dsa", "ed25519"])
def test_a_sudi_certificate_with_a_dsa_or_ed25519_key_fails_the_authentication(pki: Pki, kind: str) -> None:
    s = server(pki, operation="none", auth_mode=AuthType.MIC)
    sudi = capf.SudiData(certificate=odd_key_cert(kind, pki.mic_key))
    c = CapfClientSession(device_name=DEVICE, cert_der=pki.mic, cert_key=pki.mic_key, sudi=sudi,
                          sudi_key=pki.mic_key)
    run(s, c)
    assert s.error is None
    assert s.result is not None and s.result.outcome == "bad-auth" and "SUDI" in s.result.detail
