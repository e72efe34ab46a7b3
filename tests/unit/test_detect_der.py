"""``formats.detect.detect`` answers ``der`` for a DER certificate, key or CSR (one DER SEQUENCE,
:func:`~phoneemu.formats.detect.der_label` tells which), and ``what_it_is`` says it in a message's words;
``phone show --flash FILE`` of a file says what it is and that ``phoneemu inspect FILE`` reads it.

Was: detect raised "not a signed header (no VERSION TLV 01 00 02) and not XML" for them (``inspect`` sniffed
DER itself; every other caller of detect, :func:`phoneemu.inspection.inspect_bytes` too, said that), and
``phone show --flash cert.der`` said "no such flash directory", as if nothing were there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from phoneemu.cli import main
from phoneemu.errors import DecodeError
from phoneemu.formats import detect
from phoneemu.inspection import inspect_bytes
from tests.signer_helpers import self_signed

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
DER = serialization.Encoding.DER


def _der_files() -> dict[str, bytes]:
    key, cert = self_signed("CN=detect-der;O=phoneemu", seed="detect-der", serial=0xDE)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SEP0A0000000DE1")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    plain = serialization.NoEncryption()
    return {"CERTIFICATE": cert.public_bytes(DER), "CERTIFICATE REQUEST": csr.public_bytes(DER),
            "PRIVATE KEY": key.private_bytes(DER, serialization.PrivateFormat.PKCS8, plain),
            "RSA PRIVATE KEY": key.private_bytes(DER, serialization.PrivateFormat.TraditionalOpenSSL, plain)}


@pytest.mark.parametrize("label", list(_der_files()))
def test_detect_answers_der_and_what_it_is_names_its_type(label: str) -> None:
    data = _der_files()[label]
    assert detect.detect(data) == "der"
    assert detect.detect(data, "ITLFile.tlv") == "der"  # its bytes, not a name, say what it is
    assert detect.what_it_is(data, "x.der") == f"a DER file ({label})"


def test_what_it_is_of_the_other_kinds_and_of_no_kind() -> None:
    assert detect.what_it_is((VECTORS / "itl_lab.tlv").read_bytes()) == "an ITL"
    assert detect.what_it_is(b"<device/>") == "a config XML"
    with pytest.raises(DecodeError, match="not a signed header"):
        detect.what_it_is(b"\x00garbage")


def test_a_damaged_der_is_a_decode_error_naming_the_element() -> None:
    cut = _der_files()["CERTIFICATE"][:300]
    with pytest.raises(DecodeError, match=r"^der: SEQUENCE at offset 300: truncated"):
        detect.detect(cut, "cert.der")


def test_inspect_bytes_of_a_der_file_names_it() -> None:
    with pytest.raises(DecodeError, match=r"^a DER file \(CERTIFICATE\), not a file inspect decodes"):
        inspect_bytes(_der_files()["CERTIFICATE"], name="tvs.der")


@pytest.mark.parametrize(("name", "what", "reads"), [
    ("tvs.der", "a DER file (CERTIFICATE)", "names it and what to do with it"),
    ("ITLFile.tlv", "an ITL", "decodes it"),
    ("notes.txt", "a file", "decodes the files a phone downloads"),
])
def test_phone_show_of_a_file_says_what_it_is_and_which_command_reads_it(
        tmp_path: Path, name: str, what: str, reads: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = {"tvs.der": _der_files()["CERTIFICATE"], "ITLFile.tlv": (VECTORS / "itl_lab.tlv").read_bytes(),
            "notes.txt": b"hello\n"}[name]
    path = tmp_path / name
    path.write_bytes(data)
    assert main(["phone", "show", "--flash", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (f"phoneemu phone show: {path}: {what}, not a phone's flash directory (boot "
                                 f"--flash DIR makes one): phoneemu inspect {path} {reads}\n"), err


def test_phone_show_of_a_missing_flash_still_says_so(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["phone", "show", "--flash", str(tmp_path / "none")]) == 2
    assert "no such flash directory" in capsys.readouterr().err
