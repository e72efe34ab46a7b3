"""``inspect`` of a DER certificate revocation list: said as its PEM form is — a CRL, neither a certificate
nor a key — and refused by ``--cert`` as a CRL (:func:`phoneemu.formats.detect.der_label`).

Was: a v2 CRL (a version INTEGER, then SEQUENCEs) was taken for a v1 certificate, and said as a certificate
that does not load, in cryptography's own words: ``certificate: not a DER X.509 certificate: error parsing
asn1 value: ParseError { kind: UnexpectedTag { ... } }``."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from phoneemu.cli import main
from phoneemu.formats import detect
from tests.signer_helpers import self_signed

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
WHEN = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)


def _crl(*, revoked: int) -> x509.CertificateRevocationList:
    key, cert = self_signed("CN=crl-issuer;O=phoneemu", seed="inspect-crl", serial=0x4D3)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(cert.subject).last_update(WHEN)
               .next_update(WHEN + datetime.timedelta(days=30)))
    for serial in range(1, revoked + 1):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(WHEN).build())
    return builder.sign(key, hashes.SHA256())


def _said(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["inspect", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, (out, err)
    return err


@pytest.mark.parametrize("revoked", [0, 2], ids=["empty", "two-revoked"])
def test_a_der_crl_is_said_as_its_pem_form_is(tmp_path: Path, revoked: int,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    crl = _crl(revoked=revoked)
    der = crl.public_bytes(serialization.Encoding.DER)
    assert detect.der_label(der, "cucm.crl") == "X509 CRL"
    (tmp_path / "cucm.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "cucm.der").write_bytes(der)
    pem_said = _said([str(tmp_path / "cucm.pem")], capsys)
    der_said = _said([str(tmp_path / "cucm.der")], capsys)
    assert der_said == pem_said.replace("cucm.pem: a PEM file", "cucm.der: a DER file"), (pem_said, der_said)
    assert "a certificate revocation list (CRL)" in der_said and "ParseError" not in der_said, der_said
    as_cert = _said([str(VECTORS / "SEP001122334455.cnf.xml.sgn"), "--cert", str(tmp_path / "cucm.der")],
                    capsys)
    assert as_cert == f"phoneemu inspect: --cert {tmp_path / 'cucm.der'}: a DER file (X509 CRL), not a " \
                      "certificate\n", as_cert
