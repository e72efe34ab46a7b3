"""A certificate too large for a TVS request (spec §E.2: uint16 body length) is refused for what it is.

Before, the phone built the VERIFY (HTTPS server, §E.7.1) or QUERY (CAPF server, §F.1) request, the codec
refused it (EncodeError, body over 65535 bytes) and the phone reported "TVS unreachable"
(``E.7.1-https-tvs-unreachable`` / "TVS could not vouch (unreachable)") although no TVS was asked. Now
the rules see that the request cannot be sent: ``E.7.1-https-cert-too-large`` /
``F.1-capf-cert-too-large``, reason code ``too-large``, TVS not asked (never accepted).
"""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from phoneemu.crypto import certs
from phoneemu.errors import EncodeError, VerifyReason
from phoneemu.phone import rules
from phoneemu.protocols import tvs
from tests.unit.test_https_rule import SERVER, store_with_tvs, tomcat_der
from tests.unit.test_rules import MAC, NOW, P8861

#: what a CP-8861 sends TVS (spec §E.4)
DEVICE = f"CP-8861-SEP{MAC}"

_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def big_cert(*, extension_bytes: int = 0, name_chars: int = 0) -> tuple[bytes, bytes]:
    """(DER, PEM key) of a self-signed RSA certificate made large by an extension of ``extension_bytes``
    or by an O= attribute of ``name_chars`` characters (in subject and issuer both)."""
    org = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "o" * name_chars)] if name_chars else []
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "big.example.test"), *org])
    t = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(_KEY.public_key())
         .serial_number(0x1234567).not_valid_before(t - dt.timedelta(days=1))
         .not_valid_after(t + dt.timedelta(days=365))
         .add_extension(x509.SubjectAlternativeName([
             x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False))
    if extension_bytes:
        n = extension_bytes
        blob = b"\x04\x83" + n.to_bytes(3, "big") + b"x" * n  # an OCTET STRING of n bytes
        b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), blob),
                            critical=False)
    cert = b.sign(_KEY, hashes.SHA256())
    pem = _KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.DER), pem


def test_an_https_certificate_over_64k_is_too_large_not_tvs_unreachable() -> None:
    store = store_with_tvs()
    der, _ = big_cert(extension_bytes=70_000)
    assert len(der) > 65_535
    with pytest.raises(EncodeError):  # what the phone met before: the request cannot be built
        tvs.verify_request(1, DEVICE, der)
    d = rules.decide_https_server(store, der, profile=P8861, now=NOW, server=SERVER)
    assert d.rule == "E.7.1-https-cert-too-large", d
    assert not d.accepted and not d.pending and d.needs_tvs is None
    assert d.reason_code is VerifyReason.TOO_LARGE and d.status == "Host Not Found"
    assert "TVS not asked" in d.reason and "unreachable" not in d.reason


def test_an_https_certificate_that_fits_still_asks_tvs() -> None:
    store = store_with_tvs()
    assert rules.decide_https_server(store, tomcat_der(), profile=P8861, now=NOW,
                                     server=SERVER).rule == "E.7.1-https-needs-tvs"
    der, _ = big_cert(extension_bytes=60_000)  # large, but a VERIFY carries it
    tvs.verify_request(1, DEVICE, der)
    assert rules.decide_https_server(store, der, profile=P8861, now=NOW,
                                     server=SERVER).rule == "E.7.1-https-needs-tvs"


def test_the_fit_checks_agree_with_the_codec_at_the_boundary() -> None:
    name = rules.tvs_device_name(P8861)
    assert name == DEVICE.replace(MAC, "0" * 12)  # every MAC: the same length
    room = 65_535 - (3 + 1 + len(name)) - 3
    for size, fits in ((room, True), (room + 1, False)):
        assert tvs.verify_request_fits(name, b"\x00" * size) is fits
        if fits:
            tvs.verify_request(1, name, b"\x00" * size)
        else:
            with pytest.raises(EncodeError):
                tvs.verify_request(1, name, b"\x00" * size)
    serial = b"\x01\x02"
    room = 65_535 - (3 + 1 + len(name)) - (3 + 1) - (3 + 1 + 10) - (3 + len(serial))
    for size, fits in ((room, True), (room + 1, False)):
        subject = "s" * size
        assert tvs.query_request_fits(name, subject, "i" * 10, serial) is fits
        if fits:
            tvs.query_request(1, name, subject, "i" * 10, serial)
        else:
            with pytest.raises(EncodeError):
                tvs.query_request(1, name, subject, "i" * 10, serial)


def test_a_capf_certificate_whose_names_do_not_fit_a_query_is_too_large_not_tvs_unreachable() -> None:
    store = store_with_tvs()
    der, _ = big_cert(name_chars=33_000)  # subject + issuer: over 66,000 characters
    key = rules.https_query_key(certs.load_cert_der(der))
    with pytest.raises(EncodeError):  # what the phone met before: the QUERY cannot be built
        tvs.query_request(1, DEVICE, key.subject, key.issuer, key.serial)
    d = rules.decide_capf_server(store, der, profile=P8861, now=NOW, server="127.0.0.1:3804")
    assert d.rule == "F.1-capf-cert-too-large", d
    assert not d.accepted and not d.pending and d.needs_tvs is None
    assert d.reason_code is VerifyReason.TOO_LARGE and "TVS not asked" in d.reason
    # a CAPF certificate whose names fit is asked about as before
    small, _ = big_cert(name_chars=30)
    assert rules.decide_capf_server(store, small, profile=P8861, now=NOW,
                                    server="127.0.0.1:3804").rule == "F.1-capf-needs-tvs"
