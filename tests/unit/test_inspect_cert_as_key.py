"""``inspect --key`` given a certificate says it is one, where it goes (``--cert``) and what ``--key`` takes
(the phone's private key for a PKI ``.enc.sgn``, the manual key for a manual-key one).

Was "no PEM private key found" of a PEM certificate, and of a DER one "a DER file (CERTIFICATE), not a private
key" with no word of what to give instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from phoneemu.cli import main
from phoneemu.crypto import certs
from tests.signer_helpers import self_signed


def test_a_certificate_as_key_says_it_is_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Checked whatever FILE is (a typo is not silently ignored): a config XML here."""
    xml = tmp_path / "SEP0A00000000CA.cnf.xml"
    xml.write_bytes(b"<device><deviceSecurityMode>1</deviceSecurityMode></device>")
    cert = self_signed("CN=cert-as-key;O=phoneemu", seed="inspect-cert-as-key", serial=0xCA)[1]
    pem, der = tmp_path / "cert.pem", tmp_path / "cert.der"
    pem.write_bytes(certs.cert_pem(cert))
    der.write_bytes(cert.public_bytes(Encoding.DER))
    for path, what in ((pem, "a PEM file (CERTIFICATE), not a private key"),
                       (der, "a DER file (CERTIFICATE), not a private key")):
        assert main(["inspect", str(xml), "--key", str(path)]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1, err
        assert what in err and "give a certificate as --cert" in err and "--key takes the phone's private " \
            "key" in err and "manual key" in err, err
