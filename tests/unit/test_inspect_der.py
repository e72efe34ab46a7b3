"""``inspect`` of a DER file (a certificate as CUCM's "Download .DER" gives it and browsers save it, a CSR,
a PKCS #8 / PKCS #1 / SEC 1 private key): said as its PEM form is — its type, "not a file phoneemu inspect
decodes", what to do with it — and a DER certificate is taken by ``--cert``
(:func:`phoneemu.formats.detect.der_label`). A cut or damaged DER is one line naming the element and the
offset. Nothing of a private key is shown.

Was: "not a signed header (no VERSION TLV 01 00 02) and not XML" for all of them, and ``--cert cert.der``
"no certificate in PEM (nor a CTL/ITL)"."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID

from phoneemu.cli import main
from phoneemu.crypto.keys import PrivateKey
from phoneemu.files import PEM_LIMIT
from phoneemu.formats import detect, signed
from tests import parser_helpers
from tests.signer_helpers import file_signer, self_signed

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
one_parser = parser_helpers.one_parser()  # main is called 150 times by the damaged-certificate test
NOW = 1_780_000_000
DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM
NO_PASSWORD = serialization.NoEncryption()
KEY_FORMATS = {"PRIVATE KEY": serialization.PrivateFormat.PKCS8,
               "RSA PRIVATE KEY": serialization.PrivateFormat.TraditionalOpenSSL}


def _identity() -> tuple[PrivateKey, x509.Certificate]:
    return self_signed("CN=der-signer;O=phoneemu", seed="inspect-der", serial=0x4D2)


def _said(argv: list[str], capsys: pytest.CaptureFixture[str], status: int = 2) -> str:
    """The one stderr line of ``phoneemu inspect ARGV`` (exit ``status``, nothing on stdout)."""
    assert main(["inspect", *argv]) == status
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, (out, err)
    return err


def _csr(encoding: serialization.Encoding) -> bytes:
    key, _cert = _identity()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SEP0A0000000F71")])
    request = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return request.public_bytes(encoding)


@pytest.mark.parametrize("json", [False, True], ids=["text", "json"])
def test_a_der_certificate_is_said_as_its_pem_form_is(tmp_path: Path, json: bool,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _key, cert = _identity()
    (tmp_path / "tvs.pem").write_bytes(cert.public_bytes(PEM))
    (tmp_path / "tvs.der").write_bytes(cert.public_bytes(DER))
    flags = ["--json"] if json else []
    pem = _said([str(tmp_path / "tvs.pem"), *flags], capsys)
    der = _said([str(tmp_path / "tvs.der"), *flags], capsys)
    assert der == pem.replace("tvs.pem: a PEM file", "tvs.der: a DER file"), (pem, der)
    assert "a DER file (CERTIFICATE), not a file phoneemu inspect decodes" in der, der


def test_a_der_csr_is_said_as_its_pem_form_is_with_the_openssl_command_for_der(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "phone.csr").write_bytes(_csr(PEM))
    (tmp_path / "phone.der").write_bytes(_csr(DER))
    pem = _said([str(tmp_path / "phone.csr")], capsys)
    der = _said([str(tmp_path / "phone.der")], capsys)
    assert der == (pem.replace("phone.csr: a PEM file", "phone.der: a DER file")
                   .replace("openssl req -in", "openssl req -inform DER -in")), (pem, der)


@pytest.mark.parametrize("label", list(KEY_FORMATS))
def test_a_der_private_key_is_named_and_pointed_to_key_never_its_values(
        tmp_path: Path, label: str, capsys: pytest.CaptureFixture[str]) -> None:
    key, _cert = _identity()
    der = key.private_bytes(DER, KEY_FORMATS[label], NO_PASSWORD)
    path = tmp_path / "phone.key"
    path.write_bytes(der)
    err = _said([str(path)], capsys)
    assert err == (f"phoneemu inspect: {path}: a DER file ({label}), not a file phoneemu inspect decodes "
                   "(CTL/ITL, .sgn, .enc.sgn, firmware, config XML): give a private key as --key to "
                   "decrypt an .enc.sgn (boot takes a MIC's key as --mic-key)\n"), err
    assert isinstance(key, rsa.RSAPrivateKey)
    modulus = f"{key.private_numbers().public_numbers.n:x}"
    assert modulus[:16] not in err.lower() and der.hex()[40:72] not in err
    assert main(["inspect", str(VECTORS / "itl_lab.tlv"), "--key", str(path)]) == 0  # --key takes it
    assert modulus[:16] not in capsys.readouterr().out.lower()


def test_a_der_certificate_given_as_cert_checks_a_signature(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    identity = _identity()
    sgn = tmp_path / "SEP0A0000000F71.cnf.xml.sgn"
    sgn.write_bytes(signed.build(body=b"<device/>", filename=sgn.name, signer=file_signer(identity),
                                 timestamp=NOW))
    cert = tmp_path / "signer.der"
    cert.write_bytes(identity[1].public_bytes(DER))
    assert main(["inspect", str(sgn), "--cert", str(cert)]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "verified successfully" in out and f"({cert})" in out, (out, err)
    key = tmp_path / "signer.key.der"
    key.write_bytes(identity[0].private_bytes(DER, KEY_FORMATS["PRIVATE KEY"], NO_PASSWORD))
    err = _said([str(sgn), "--cert", str(key)], capsys)
    assert err.startswith(f"phoneemu inspect: --cert {key}: a DER file (PRIVATE KEY), not a certificate: "
                          "--key takes a private key"), err


def _cert_der() -> bytes:
    return _identity()[1].public_bytes(DER)


@pytest.mark.parametrize(("name", "damage", "said"), [
    ("cut.der", lambda d: d[:1], "der: SEQUENCE at offset 0: truncated: no tag and length"),
    ("cut.der", lambda d: d[:3], "der: SEQUENCE at offset 3: truncated: its length is cut short"),
    ("cut.bin", lambda d: d[:300], f"der: SEQUENCE at offset 300: truncated: it declares {len(_cert_der())} "
                                   "bytes from offset 0, the file ends after 300"),
    ("tail.crt", lambda d: d + b"\n", f"der: SEQUENCE at offset {len(_cert_der())}: 1 bytes after the end of "
                                      "the SEQUENCE"),
    ("inner.cer", lambda d: d[:5] + b"\x90" + d[6:], "der: SEQUENCE[0] at offset 5: length byte 0x90: not a "
                                                     "DER length"),
    ("ber.der", lambda d: b"\x30\x80" + d[4:], "der: SEQUENCE at offset 1: indefinite length (BER, not DER)"),
    ("version.der", lambda d: d[:12] + b"\x07" + d[13:], "certificate: not a DER X.509 certificate"),
], ids=["one-byte", "length-cut", "cut-not-named-der", "trailing-newline", "inner-length", "indefinite",
        "bad-version"])
def test_a_cut_or_damaged_der_is_one_line_naming_the_element_and_offset(
        tmp_path: Path, name: str, damage: Callable[[bytes], bytes], said: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / name
    path.write_bytes(damage(_cert_der()))
    err = _said([str(path)], capsys)
    assert err.startswith(f"phoneemu inspect: {path}: {said}"), err
    as_cert = _said([str(VECTORS / "SEP001122334455.cnf.xml.sgn"), "--cert", str(path)], capsys)
    assert as_cert.startswith(f"phoneemu inspect: --cert {path}: {said}"), as_cert


def test_damaged_certificates_never_escape_one_line(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Seeded cuts and byte changes of a DER certificate (bounded): each is said in one line, as a DER
    file, a damaged DER or a certificate that does not load — never an internal error (exit 3)."""
    rng = random.Random(7)
    good = _cert_der()
    path = tmp_path / "mutant.der"
    for _ in range(150):
        data = bytearray(good[:rng.randrange(2, len(good) + 1)])
        for _flip in range(rng.randrange(0, 3) if len(data) > 2 else 0):
            data[rng.randrange(2, len(data))] = rng.randrange(256)
        path.write_bytes(bytes(data))
        err = _said([str(path)], capsys)
        assert any(s in err for s in (": a DER file (", ": der: ", ": certificate: ")), (data.hex(), err)


@pytest.mark.parametrize("vector", ["itl_lab.tlv", "ctl_nonsecure_3746.tlv", "SEP001122334455.cnf.xml.sgn",
                                    "List.xml.sgn"])
def test_our_formats_and_text_are_not_taken_for_der(vector: str) -> None:
    """None of our formats starts with 0x30 (a SEQUENCE); a text starting with "0" is not DER either."""
    assert detect.der_label((VECTORS / vector).read_bytes(), vector) is None
    for other in (b"", b"0", b"0 is not DER\n", b"\x89PNG\r\n\x1a\n", b"<device/>"):
        assert detect.der_label(other, "file.txt") is None, other


def test_a_text_starting_with_zero_is_still_said_not_a_signed_header(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"0 is where the list starts\n")
    err = _said([str(path)], capsys)
    assert ": detect: at offset 0: not a signed header" in err, err


def test_an_oversized_cert_file_is_named_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Was ``--cert F: F: certificate file is N bytes, ...``: the file named twice."""
    big = tmp_path / "big.pem"
    with big.open("wb") as fh:
        fh.truncate(PEM_LIMIT + 1)
    err = _said([str(VECTORS / "SEP001122334455.cnf.xml.sgn"), "--cert", str(big)], capsys)
    assert err == (f"phoneemu inspect: --cert {big}: certificate file is {PEM_LIMIT + 1} bytes, more than "
                   f"the limit of {PEM_LIMIT} bytes\n"), err


def test_dash_is_said_to_be_no_standard_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    err = _said(["-"], capsys)
    assert err == ("phoneemu inspect: -: No such file or directory (inspect reads a file, not standard "
                   "input: save it to a file and name that)\n"), err



def test_a_pkcs7_or_pkcs12_bundle_says_how_to_take_its_certificates_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Was "a PKCS7 is neither a certificate (--cert) nor a private key (--key)" (PEM), "not a signed
    header" (DER), with no word of what it holds."""
    key, cert = _identity()
    assert isinstance(key, rsa.RSAPrivateKey)
    bundles = {"chain.p7b": pkcs7.serialize_certificates([cert], DER),
               "chain.p7c": pkcs7.serialize_certificates([cert], PEM),
               "phone.p12": pkcs12.serialize_key_and_certificates(b"phone", key, cert, None, NO_PASSWORD)}
    said = {}
    for name, data in bundles.items():
        (tmp_path / name).write_bytes(data)
        said[name] = _said([str(tmp_path / name)], capsys).split(f"{name}: ", 1)[1]
    decodes = "not a file phoneemu inspect decodes (CTL/ITL, .sgn, .enc.sgn, firmware, config XML)"
    p7 = ("a PKCS #7 bundle holds certificates: openssl pkcs7{} -in FILE -print_certs -out certs.pem writes "
          "them, to give as --cert")
    p12 = ("a PKCS #12 bundle holds a certificate and its key: openssl pkcs12 -in FILE -nodes -out both.pem "
           "writes them, to give as --cert and --key")
    assert said == {"chain.p7b": f"a DER file (PKCS7), {decodes}: {p7.format(' -inform DER')}\n",
                    "chain.p7c": f"a PEM file (PKCS7), {decodes}: {p7.format('')}\n",
                    "phone.p12": f"a DER file (PKCS12), {decodes}: {p12}\n"}, said
