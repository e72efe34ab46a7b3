"""Regression tests for bugs the fuzzer found in our parsers (issue #7).

Each test is the minimal input of one finding, written failing and kept as a regression once the
fix landed (the fixes are in phoneemu/crypto/certs.py, owned by the crypto package).
"""

from __future__ import annotations

import contextlib
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

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
    # what cryptography says after the colon depends on its version (48: "unknown string type")
    assert "flash problem: mic.der: not a DER X.509 certificate: " in out, out
    assert "not loaded (the phone runs without its MIC)" in out


# --- found by a bug hunt with a throwaway harness feeding mutated bytes to every public parser -------

_ID_EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")  # OID 1.2.840.10045.2.1


def _unknown_oid(der: bytes) -> bytes:
    """``der`` with its id-ecPublicKey OID turned into 1.2.840.10045.2.127, a key type nobody knows."""
    at = der.index(_ID_EC_PUBLIC_KEY)
    return der[: at + 8] + b"\x7f" + der[at + 9:]


def _ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(12345, ec.SECP256R1())


def test_spki_with_unknown_key_algorithm_is_decode_error() -> None:
    """A SubjectPublicKeyInfo whose algorithm OID is unknown made ``load_der_public_key`` raise
    ``cryptography.exceptions.UnsupportedAlgorithm`` (not a ValueError) out of
    ``crypto.keys.load_public_key_spki_der``."""
    from phoneemu.crypto import keys

    spki = keys.public_key_spki_der(_ec_key().public_key())
    with pytest.raises(DecodeError, match="Unknown key type") as info:
        keys.load_public_key_spki_der(_unknown_oid(spki))
    assert info.value.path == "public_key"


@pytest.mark.parametrize("loader", ["load_private_key_pem", "private_key_pem_public_der"])
def test_pem_private_key_with_unknown_key_algorithm_is_decode_error(loader: str) -> None:
    """The same OID in a PKCS#8 PEM key (e.g. a damaged key file of a lab or a phone's flash)."""
    import base64

    from phoneemu.crypto import keys

    pem = keys.private_key_pem(_ec_key())
    der = base64.b64decode(b"".join(pem.splitlines()[1:-1]))
    begin, *_, end = pem.splitlines()  # the generated key's own PEM lines, around the altered body
    bad = begin + b"\n" + base64.encodebytes(_unknown_oid(der)) + end + b"\n"
    with pytest.raises(DecodeError, match="Unknown key type") as info:
        getattr(keys, loader)(bad, source="mic.key")
    assert info.value.path == "mic.key"


def test_capf_server_keygen_response_with_unknown_key_algorithm_fails_the_session() -> None:
    """Through the CAPF server (spec §F): a phone answering KEY_GENERATE_REQUEST with a PUBLIC_KEY whose
    algorithm OID is unknown made ``CapfServerSession.receive`` raise UnsupportedAlgorithm, which the lab
    CAPF service does not catch (its connection task died with a traceback and no session log). Expected:
    a DecodeError that fails the session."""
    from phoneemu.protocols import capf

    key = _ec_key()
    server = capf.CapfServerSession(session_id=7, operation="install", key_type="ec",
                                    issue_lsc=lambda name, spki: b"\x30\x00")
    client = capf.CapfClientSession(device_name="SEP001122334455",
                                    generate_key=lambda kind, bits, curve: key)
    to_server: list[bytes] = []
    to_client = [server.start()]
    while to_client:
        to_server = [out for frame in to_client for out in client.receive(frame)]
        keygen = [f for f in to_server if capf.decode(f).command == capf.CapfCommand.KEY_GENERATE_RESPONSE]
        if keygen:
            break
        to_client = [out for frame in to_server for out in server.receive(frame)]
    else:
        pytest.fail("the client never sent KEY_GENERATE_RESPONSE")
    msg = capf.decode(keygen[0])
    elements = tuple(capf.Element(tag=e.tag, value=_unknown_oid(e.value) if e.tag == capf.CapfTag.PUBLIC_KEY
                                  else e.value) for e in msg.elements)
    bad = capf.encode(capf.CapfMessage(command=msg.command, session_id=msg.session_id, elements=elements))
    with pytest.raises(DecodeError, match="Unknown key type"):
        server.receive(bad)
    assert server.state == "failed"


def test_scenario_base60_number_is_refused_unread() -> None:
    """A scenario of 900 KB (under the 1 MiB file limit) holding one plain base-60 integer
    (``1:0:0:...``, YAML 1.1) took ~50 s in PyYAML's int constructor (quadratic in the number of
    digit groups): a hang. Expected: a ScenarioError with file:line before the value is read (a short
    one here: the length alone decides, and without the fix the test fails fast, not slowly)."""
    from phoneemu.errors import ScenarioError
    from phoneemu.scenario.loader import load_text

    text = "name: x\nreproduces: 1" + ":0" * 1000 + "\nphones: {}\nsteps: []\n"
    with pytest.raises(ScenarioError, match="a number of 2001 characters") as info:
        load_text(text, "bomb.yaml")
    assert (info.value.file, info.value.line) == ("bomb.yaml", 2)


def _rsa_key_with_huge_exponent(bits: int) -> rsa.RSAPublicKey:
    """A public RSA key nobody would make, but cryptography loads: odd modulus, (bits-1)-bit exponent."""
    import random

    rng = random.Random(bits)
    n = rng.getrandbits(bits) | (1 << (bits - 1)) | 1
    return rsa.RSAPublicNumbers(rng.getrandbits(bits - 1) | (1 << (bits - 2)) | 1, n).public_key()


def test_capf_raw_rsa_check_refuses_a_huge_public_exponent_before_pow() -> None:
    """Found by reading the CAPF authentication path after the harness runs: ``verify_raw_digest`` does
    the raw RSA operation with Python's ``pow``; a 16384-bit key with a 16383-bit exponent (in a
    certificate the peer sends, checked before the certificate is trusted) cost ~9 s of CPU per
    signature in the CAPF server's event loop, twice per AUTH_RESPONSE. Expected: refused at once with
    reason UNSUPPORTED_KEY (8192 bits here: without the fix the test fails in ~1 s with BAD_SIGNATURE)."""
    from phoneemu.crypto.hashes import HashAlg
    from phoneemu.crypto.signatures import verify_raw_digest
    from phoneemu.errors import VerificationError, VerifyReason

    key = _rsa_key_with_huge_exponent(8192)
    signature = (key.public_numbers().n - 5).to_bytes(1024, "big")
    with pytest.raises(VerificationError, match=r"\d+-bit public exponent refused") as info:
        verify_raw_digest(key, signature, b"auth data", HashAlg.SHA512)
    assert info.value.reason is VerifyReason.UNSUPPORTED_KEY


def test_capf_server_certificate_auth_with_a_huge_exponent_key_ends_bad_auth() -> None:
    """The same through ``CapfServerSession`` in certificate mode (AUTH_TYPE 3, LSC): an AUTH_RESPONSE
    whose self-made certificate carries that key ends the session "bad-auth" naming the key."""
    import datetime as dt

    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    from phoneemu.protocols import capf

    key = _rsa_key_with_huge_exponent(8192)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SEP001122334455")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key).serial_number(5)
            .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2040, 1, 1, tzinfo=dt.UTC)).sign(_ec_key(), hashes.SHA256()))
    server = capf.CapfServerSession(session_id=9, operation="fetch", auth_mode=capf.AuthType.LSC,
                                    verify_device_cert=lambda c, t: None)
    server.start()
    signature = (key.public_numbers().n - 5).to_bytes(1024, "big")
    der = cert.public_bytes(serialization.Encoding.DER)
    reply = capf.message(capf.CapfCommand.AUTH_RESPONSE, 9,
                         (capf.CapfTag.DEVICE_NAME, capf.encode_cstring("SEP001122334455")),
                         (capf.CapfTag.CERTIFICATE, capf.encode_certificate(der)),
                         (capf.CapfTag.SHA2_SIGNED_DATA, capf.encode_sha2_signed_data(signature)))
    server.receive(capf.encode(reply))
    assert server.result is not None
    assert server.result.outcome == "bad-auth", server.result
    assert "public exponent refused" in server.result.detail


def test_load_certs_pem_negative_serial_is_decode_error_not_a_warning() -> None:
    """The negative-serial certificate above, in PEM (the harness's crypto target,
    ``crypto.certs.load_certs_pem``, as used for lab certificate files and ``inspect --cert``):
    cryptography's CryptographyDeprecationWarning escaped, an exception under ``-W error``, where
    ``load_cert_der`` already refuses it. Expected: the same DecodeError, naming the source."""
    import base64

    der = build_corpus("itl").donor_certs[0]
    at = der.index(b"\x02\x06\x6b\xa5")
    negative = der[: at + 2] + b"\xeb" + der[at + 3:]
    pem = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(negative) + b"-----END CERTIFICATE-----\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DecodeError, match="certificate violates RFC 5280") as info:
            certs.load_certs_pem(pem, source="ca.pem")
    assert info.value.path == "ca.pem"


def test_scenario_huge_hex_integer_is_scenario_error_not_value_error() -> None:
    """A hexadecimal count of 4000 digits (``count: 0xfff...``) loaded as a 16000-bit int; the
    range check's message then did ``repr()`` of it, and Python's 4300-digit limit on int-to-text
    conversion raised ValueError out of ``load_text``. The length limit on numbers refuses it first."""
    from phoneemu.errors import ScenarioError
    from phoneemu.scenario.loader import load_text

    text = "reproduces: x\nphones:\n  a:\n    count: 0x" + "f" * 4000 + "\nsteps: []\n"
    with pytest.raises(ScenarioError, match="a number of 4002 characters") as info:
        load_text(text, "hex.yaml")
    assert (info.value.file, info.value.line) == ("hex.yaml", 4)
