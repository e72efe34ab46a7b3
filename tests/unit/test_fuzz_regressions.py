"""Regression tests for bugs the fuzzer found in our parsers (issue #7).

Each test is the minimal input of one finding, written failing and kept as a regression once the
fix landed (the fixes are in phoneemu/crypto/certs.py, owned by the crypto package).
"""

from __future__ import annotations

import contextlib
import warnings

import pytest

from phoneemu.crypto import certs
from phoneemu.errors import DecodeError
from phoneemu.formats import trustlist
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.tlvtree import parse_tree, serialise


def _cert_with_version(version: int) -> bytes:
    der = build_corpus("itl").donor_certs[0]
    at = der.index(b"\xa0\x03\x02\x01\x02")  # [0] EXPLICIT INTEGER 2 (v3)
    return der[: at + 4] + bytes([version]) + der[at + 5:]


def test_load_cert_der_invalid_x509_version_is_decode_error() -> None:
    """Found by ``phoneemu fuzz --format ctl --seed 1`` (run 677): a certificate whose version
    INTEGER is 10 makes cryptography raise ``x509.InvalidVersion`` (not a ValueError), which
    ``crypto.certs.load_cert_der`` lets escape."""
    with pytest.raises(DecodeError):
        certs.load_cert_der(_cert_with_version(10))


def test_trust_record_x509_invalid_version_is_decode_error() -> None:
    """The same bug seen through a CTL record (record tag 9, spec §B.2): ``TrustRecord.x509()``."""
    seed = build_corpus("ctl").seeds[0]
    tree = parse_tree(seed, records=True)
    assert tree.records
    cert = next(n for n in tree.records[0].nodes if n.tag == 9)
    cert.value = _cert_with_version(10)
    tl = trustlist.parse(serialise(tree), lazy=False)
    with pytest.raises(DecodeError):
        tl.records[0].x509()


def test_load_cert_der_negative_serial_is_not_a_warning_escape() -> None:
    """Found by ``python bench/fuzz.py --seed 7`` (ITL, cert-der mutation): a certificate with a
    negative serial makes cryptography emit ``CryptographyDeprecationWarning`` from
    ``crypto.certs.load_cert_der``; under ``-W error`` (our pytest setting, and a future
    cryptography release per the warning text) it escapes as an exception that is not a
    DecodeError. Expected: DecodeError, or a certificate with no warning."""
    der = build_corpus("itl").donor_certs[0]
    at = der.index(b"\x02\x06\x6b\xa5")  # serial INTEGER 0x6BA5DE3A0011 → top bit set: negative
    negative = der[: at + 2] + b"\xeb" + der[at + 3:]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with contextlib.suppress(DecodeError):
            certs.load_cert_der(negative)


def _damaged_spki(kind: str) -> bytes:
    der = build_corpus("itl").donor_certs[0]
    at = der.index(bytes.fromhex("06092a864886f70d010101"))  # rsaEncryption OID of the SPKI
    if kind == "oid":  # unknown key algorithm 1.2.840.113549.1.1.127
        return der[: at + 10] + b"\x7f" + der[at + 11:]
    bitstring = der.index(b"\x05\x00\x03", at)  # NULL parameters, then the key BIT STRING
    return der[: bitstring + 7] + b"\x31" + der[bitstring + 8:]  # RSAPublicKey SEQUENCE tag damaged


@pytest.mark.parametrize("kind", ["oid", "key"])
def test_cert_public_key_damaged_spki_is_decode_error(kind: str) -> None:
    """Found by ``python bench/fuzz.py --seed 2026`` (ITL runs 87332 and 100862, cert-der
    mutations): ``crypto.certs.cert_public_key`` let ``ValueError`` ("Could not deserialize key
    data") and ``UnsupportedAlgorithm`` ("Unknown key type") escape from
    ``TrustRecord.public_key_obj()``. Fixed in crypto/certs.py since; kept as a regression."""
    cert = certs.load_cert_der(_damaged_spki(kind))
    with pytest.raises(DecodeError):
        certs.cert_public_key(cert)


def _cert_with_damaged_issuer(how: str) -> bytes:
    """A donor certificate whose issuer's first CN string is damaged; cryptography parses names lazily,
    so ``load_der_x509_certificate`` itself succeeds."""
    der = bytearray(build_corpus("itl").donor_certs[0])
    at = der.index(b"\x06\x03\x55\x04\x03") + 5  # OID commonName, then the string's tag (issuer first)
    if how == "string-type":
        der[at] ^= 0xFF  # UTF8String 0x0C -> 0xF3: an unknown string type (KeyError 243)
    else:
        der[at + 2] = 0xFF  # not UTF-8 (ValueError)
    return bytes(der)


@pytest.mark.parametrize("how", ["string-type", "utf8"])
def test_damaged_issuer_is_decode_error_at_load(how: str) -> None:
    """Found by an audit of ``phoneemu phone show`` on a flash whose mic.der had one byte flipped:
    ``cert.issuer`` raised KeyError or ValueError on first access, in show.py, as a traceback."""
    import base64

    der = _cert_with_damaged_issuer(how)
    with pytest.raises(DecodeError, match=r"not a DER X\.509 certificate"):
        certs.load_cert_der(der)
    pem = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE-----\n"
    with pytest.raises(DecodeError, match="cannot load PEM certificates"):
        certs.load_certs_pem(pem)


def test_phone_show_with_a_damaged_mic_says_unreadable(tmp_path: object,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    from phoneemu.cli import main
    from phoneemu.phone.flash import Flash
    from phoneemu.phone.profile import get_profile
    from phoneemu.phone.store import Credential, TrustStore

    flash = Path(str(tmp_path)) / "ph"
    store = TrustStore(profile=get_profile("cp-8861"))
    store.mic = Credential(cert_der=_cert_with_damaged_issuer("string-type"), key_pem=b"")
    Flash(flash, profile=store.profile).save(store)
    assert main(["phone", "show", "--flash", str(flash)]) == 0
    # the damaged MIC is noticed when the flash is loaded (flash module rules), naming the file
    out = capsys.readouterr().out
    assert "flash problem: mic.der: not a DER X.509 certificate: unknown string type" in out, out
    assert "not loaded (the phone runs without its MIC)" in out
