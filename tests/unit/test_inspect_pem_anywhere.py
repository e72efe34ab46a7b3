"""``inspect`` of a PEM file finds its block after text (``openssl x509 -text``'s dump, a pkcs12 export's
"Bag Attributes") or a UTF-8 BOM, names each type and advises per type: a certificate is ``--cert``, a
private key ``--key``, a certificate request (CSR) neither (:func:`phoneemu.commands.inspect._pem_labels`).

Was: only a file starting with the block was one ("not a signed header ... and not XML" otherwise), and a
CSR was told to be given as --cert or --key."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.commands.inspect import PEM_SEARCHED
from phoneemu.lab.cluster import LabCluster
from tests.helpers import module_lab

NOW = 1_780_000_000
MAC = "0A0000000F71"
NOT_DECODED = "not a file phoneemu inspect decodes (CTL/ITL, .sgn, .enc.sgn, firmware, config XML)"
CERT_ADVICE = "give a certificate as --cert to check a file's signature with it"
KEY_ADVICE = "give a private key as --key to decrypt an .enc.sgn (boot takes a MIC's key as --mic-key)"
#: what ``openssl x509 -text`` writes before the block (shortened)
OPENSSL_TEXT = (b"Certificate:\n    Data:\n        Version: 3 (0x2)\n        Serial Number:\n"
                b"            40:8a:1c:9d\n        Signature Algorithm: sha256WithRSAEncryption\n"
                b"        Issuer: O = phoneemu lab, CN = tvs\n"
                + b"                00:c3:5e:7a:91:0b:ee:42\n" * 200)
#: what ``openssl pkcs12 -nodes`` writes before each block
BAG = b"Bag Attributes\n    localKeyID: 01 00 00 00 \n    friendlyName: phone\n"
CSR = (b"-----BEGIN CERTIFICATE REQUEST-----\nMIIBVTCBvwIBADAWMRQwEgYDVQQDDAtTRVAwQTAwMDAwMDA=\n"
       b"-----END CERTIFICATE REQUEST-----\n")


lab = module_lab("pem", seed=13, now=NOW, phones={MAC: {"now": NOW}})


def _inspected(path: Path, data: bytes, capsys: pytest.CaptureFixture[str]) -> str:
    """What ``inspect`` says of ``data`` written to ``path`` (its exit status 2: not decoded)."""
    path.write_bytes(data)
    assert main(["inspect", str(path)]) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("before", [OPENSSL_TEXT, b"\xef\xbb\xbf",
                                    b"\xef\xbb\xbf" + BAG + b"subject=CN = tvs\n"],
                         ids=["openssl-text", "bom", "bom-bag-attributes"])
def test_a_certificate_after_text_or_a_bom_is_said_a_pem_certificate(
        lab: LabCluster, tmp_path: Path, before: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    assert len(OPENSSL_TEXT) < PEM_SEARCHED
    path = tmp_path / "tvs.txt"
    err = _inspected(path, before + (lab.root / "certs" / "tvs.pem").read_bytes(), capsys)
    assert err == f"phoneemu inspect: {path}: a PEM file (CERTIFICATE), {NOT_DECODED}: {CERT_ADVICE}\n", err


def test_a_pkcs12_export_names_its_certificate_and_its_key(lab: LabCluster, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    phone = lab.root / "phones" / MAC
    exported = BAG + (phone / "mic.pem").read_bytes() + BAG + (phone / "mic.key").read_bytes()
    path = tmp_path / "phone.p12.pem"
    err = _inspected(path, exported, capsys)
    label = (phone / "mic.key").read_text().splitlines()[0].removeprefix("-----BEGIN ").removesuffix("-----")
    assert err == (f"phoneemu inspect: {path}: a PEM file (CERTIFICATE, {label}), {NOT_DECODED}: "
                   f"{CERT_ADVICE}; {KEY_ADVICE}\n"), err


@pytest.mark.parametrize("before", [b"", b"Certificate Request:\n    Data:\n        Version: 1 (0x0)\n"],
                         ids=["bare", "openssl-text"])
def test_a_csr_is_said_to_be_neither_certificate_nor_key(tmp_path: Path, before: bytes,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "phone.csr"
    err = _inspected(path, before + CSR, capsys)
    assert err == (f"phoneemu inspect: {path}: a PEM file (CERTIFICATE REQUEST), {NOT_DECODED}: a "
                   "certificate request (CSR) asks a CA for a certificate and is neither a certificate nor a "
                   "key: inspect reads the phone's files, not CSRs (openssl req -in FILE -noout -text shows "
                   "one)\n"), err
    assert "--cert" not in err and "--key" not in err


def test_a_block_past_the_searched_bytes_or_inside_xml_or_binary_is_not_a_pem_file(
        lab: LabCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The search is bounded (:data:`PEM_SEARCHED`), and a config XML or a binary file quoting a
    certificate is decoded as what it is, not refused as a PEM file."""
    cert = (lab.root / "certs" / "tvs.pem").read_bytes()
    far = _inspected(tmp_path / "far.txt", b"x\n" * (PEM_SEARCHED // 2) + cert, capsys)
    binary = _inspected(tmp_path / "quoted.bin", b"\x01\x00\x02\x00" + cert, capsys)
    for err in (far, binary):
        assert "a PEM file" not in err and ": detect: " in err, err
    xml = tmp_path / "quoted.xml"
    xml.write_bytes(b"\xef\xbb\xbf<device>\n" + cert + b"</device>\n")
    assert main(["inspect", str(xml)]) == 0
    out, err = capsys.readouterr()
    assert "Parse config File" in out and err == "", err
