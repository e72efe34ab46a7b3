"""Hypothesis properties of the phone's check of the LSC a CAPF server stores (``_lsc_problem``, spec §F.9).

A :class:`CapfClientSession` is driven (as in test_capf_hostile.py) to the state after key generation,
with a fixed P-256 key so that certificates for it can be made once; then:

* random bytes, and random mutations of the DER of the right LSC, as the STORE certificate never raise
  (the phone answers STORE_CERTIFICATE_RESPONSE and ends the session with an outcome), and what is
  installed is always a certificate that loads, binds the generated key, names the device, is an end entity
  and is valid now;
* generated certificates (right or other key, CA or not, keyUsage, validity, extensions absent) are
  accepted exactly when the rules say so.

``PHONEEMU_PROP_EXAMPLES=N`` runs each property with N random (not derandomized) examples: the long hunt.
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from phoneemu.crypto.keys import KeySpec, PrivateKey, generate_key
from phoneemu.protocols import capf
from phoneemu.protocols.capf import CapfClientSession, CapfCommand, CapfTag, CertType

_HUNT = int(os.environ.get("PHONEEMU_PROP_EXAMPLES", "0"))


def props(n: int) -> settings:
    return settings(max_examples=_HUNT or n, deadline=None, derandomize=not _HUNT,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


C = CapfCommand
T = CapfTag
SID = 0x01020304
DEVICE = "SEP001122334455"
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
P256 = ((T.KEY_TYPE, b"\x01"), (T.CURVE, b"\x00"))

PHONE_KEY = generate_key(KeySpec(kind="ec", curve="p256"))
OTHER_KEY = generate_key(KeySpec(kind="ec", curve="p256"))
CA_KEY = generate_key(KeySpec(kind="ec", curve="p256"))


def _spki(key: Any) -> bytes:
    spki: bytes = key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return spki


PHONE_SPKI = _spki(PHONE_KEY.public_key())


def make_cert(*, key: PrivateKey = PHONE_KEY, days: tuple[int, int] = (-1, 365), ca: bool | None = False,
              ku: tuple[bool, bool, bool] | None = (True, False, False), serial: int = 99) -> bytes:
    """An LSC for ``key``'s public half signed by CA_KEY; ``ca``/``ku`` None: that extension absent;
    ``ku`` (digital_signature, key_cert_sign, crl_sign)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DEVICE)])
    b = (x509.CertificateBuilder().subject_name(name)
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CAPF")]))
         .public_key(key.public_key()).serial_number(serial)
         .not_valid_before(NOW + dt.timedelta(days=days[0]))
         .not_valid_after(NOW + dt.timedelta(days=days[1])))
    if ca is not None:
        b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    if ku is not None:
        usage = x509.KeyUsage(digital_signature=ku[0], content_commitment=False, key_encipherment=False,
                              data_encipherment=False, key_agreement=False, key_cert_sign=ku[1],
                              crl_sign=ku[2], encipher_only=False, decipher_only=False)
        b = b.add_extension(usage, critical=True)
    return b.sign(CA_KEY, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


RIGHT = make_cert()
assert b"\x0c\x04CAPF" in RIGHT  # the issuer's UTF8String (an @example below damages its tag)


def msg(command: int, *elements: tuple[int, bytes]) -> bytes:
    return capf.encode(capf.message(command, SID, *elements))


def after_keygen() -> CapfClientSession:
    phone = CapfClientSession(device_name=DEVICE, now=NOW, generate_key=lambda _t, _b, _c: PHONE_KEY)
    phone.receive(msg(C.AUTH_REQUEST, (T.VERSION, b"\x03"), (T.AUTH_TYPE, b"\x00")))
    (resp,) = [capf.decode(f) for f in phone.receive(msg(C.KEY_GENERATE_REQUEST, *P256))]
    assert resp.command == C.KEY_GENERATE_RESPONSE and resp.require(T.PUBLIC_KEY) == PHONE_SPKI
    return phone


def oracle_ok(der: bytes) -> bool:
    """The rules of §F.9 as the module docstring gives them, computed with cryptography directly."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            cert = x509.load_der_x509_certificate(der)
            cert.serial_number, cert.subject, cert.issuer  # noqa: B018 - parsed lazily: a damaged name refuses
            exts = cert.extensions
            if _spki(cert.public_key()) != PHONE_SPKI:
                return False
            before, after = cert.not_valid_before_utc, cert.not_valid_after_utc
    except Exception:  # anything cryptography refuses (or warns about) is not an LSC
        return False
    try:
        if exts.get_extension_for_class(x509.BasicConstraints).value.ca:
            return False
    except x509.ExtensionNotFound:
        pass
    try:
        ku = exts.get_extension_for_class(x509.KeyUsage).value
        if ku.key_cert_sign or ku.crl_sign:
            return False
    except x509.ExtensionNotFound:
        pass
    return before <= NOW <= after and _names_device(cert, exts)


def _names_device(cert: x509.Certificate, exts: x509.Extensions) -> bool:
    """A CN equal to DEVICE or ending in ``-DEVICE``, or a SAN URI equal to it (§F.9)."""
    cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if any(isinstance(n, str) and (n == DEVICE or n.endswith("-" + DEVICE)) for n in cns):
        return True
    try:
        san = exts.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return DEVICE in san.get_values_for_type(x509.UniformResourceIdentifier)


def store(der: bytes) -> capf.CapfResult:
    """STORE ``der`` on a phone after key generation, then END_SESSION success (a hostile server)."""
    phone = after_keygen()
    problem = phone._lsc_problem(der)  # the unit under test: never raises, "" or why
    assert isinstance(problem, str)
    (resp,) = [capf.decode(f) for f in phone.receive(msg(
        C.STORE_CERTIFICATE_REQUEST, (T.CERTIFICATE_TYPE, b"\x01"),
        (T.CERTIFICATE, capf.encode_certificate(der, CertType.LSC))))]
    assert resp.command == C.STORE_CERTIFICATE_RESPONSE
    assert resp.require(T.REASON) == (b"\x07" if problem else b"\x01")
    assert phone.receive(msg(C.END_SESSION, (T.REASON, b"\x01"))) == []
    assert phone.result is not None
    return phone.result


def check(der: bytes) -> bool:
    r = store(der)
    if r.outcome == "installed":
        assert r.certificate == der and r.key is PHONE_KEY
        assert oracle_ok(der), "installed a certificate the rules refuse"
        return True
    assert r.outcome == "rejected" and r.certificate is None and r.key is None
    assert "the phone refused the LSC" in r.detail
    return False


def test_the_right_certificate_is_installed() -> None:
    assert check(RIGHT)


@props(400)
@given(st.binary(max_size=600))
def test_random_bytes_as_the_lsc_never_raise_and_are_not_installed(der: bytes) -> None:
    assert not check(der)


@st.composite
def mutated_der(draw: st.DrawFn) -> bytes:
    out = bytearray(RIGHT)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        op = draw(st.sampled_from(["flip", "set", "delete", "insert", "cut", "dup"]))
        if op == "flip" and out:
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and out:
            out[at] = draw(st.sampled_from([0x00, 0x01, 0x02, 0x04, 0x05, 0x30, 0x80, 0x81, 0x82, 0x84,
                                            0xA0, 0xA3, 0xFF]))
        elif op == "delete":
            del out[at:at + draw(st.integers(1, 10))]
        elif op == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=6))
        elif op == "cut":
            del out[at:]
        else:
            out[at:at] = out[at:at + draw(st.integers(1, 30))]
    return bytes(out)


@props(1000)
@given(mutated_der())
@example(RIGHT.replace(b"\x0c\x04CAPF", b"\x0d\x04CAPF", 1))  # the issuer's string type damaged: refused
def test_mutated_der_never_raises_and_only_the_rules_decide(der: bytes) -> None:
    installed = check(der)
    assert installed == oracle_ok(der)


@props(100)
@given(right_key=st.booleans(), days=st.sampled_from([(-1, 365), (-400, -1), (2, 400), (0, 0), (-10, 0)]),
       ca=st.sampled_from([None, False, True]),
       ku=st.one_of(st.none(), st.tuples(st.booleans(), st.booleans(), st.booleans())))
def test_generated_certificates_are_installed_exactly_when_the_rules_say(
        right_key: bool, days: tuple[int, int], ca: bool | None, ku: tuple[bool, bool, bool] | None) -> None:
    der = make_cert(key=PHONE_KEY if right_key else OTHER_KEY, days=days, ca=ca, ku=ku)
    signs = ku is not None and (ku[1] or ku[2])
    want = right_key and days[0] <= 0 <= days[1] and ca is not True and not signs
    assert oracle_ok(der) == want
    assert check(der) == want
