"""``inspect --key`` takes a DER private key as it takes a PEM one: PKCS #8, PKCS #1 RSA, SEC 1 EC
(:func:`phoneemu.inspection.load_private_key`: PEM first, then DER through
:func:`phoneemu.crypto.keys.load_private_key_der`).

Was: "a DER file (PRIVATE KEY): --key takes a PEM: openssl pkey -inform DER ... writes one" (exit 2), the
same advice for a DER key given as FILE or ``--cert``. A file that is neither a PEM nor a DER private key
is still one clear line naming ``--key`` and what the file is; a DER key with a password says how to write
it without one; nothing of a key is shown.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from phoneemu.cli import main
from phoneemu.crypto import certs, keys
from phoneemu.errors import DecodeError
from phoneemu.formats import encrypted
from tests.signer_helpers import file_signer, self_signed

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
ITL = str(VECTORS / "itl_lab.tlv")
NOW = 1_780_000_000
DER = serialization.Encoding.DER
PKCS8 = serialization.PrivateFormat.PKCS8
TRADITIONAL = serialization.PrivateFormat.TraditionalOpenSSL  # PKCS #1 for RSA, SEC 1 for EC
PLAIN = serialization.NoEncryption()
PLAINTEXT = b"<device><deviceSecurityMode>3</deviceSecurityMode></device>"


def _phone() -> tuple[keys.PrivateKey, object]:
    return self_signed("CN=SEP0A0000000D3K;O=phone", seed="inspect-der-key-phone", serial=0xD3)


def _ec_key() -> keys.PrivateKey:
    return keys.generate_key(keys.KeySpec.parse("ec-p256"), unsafe_seed="inspect-der-key-ec")


def _enc_sgn(folder: Path) -> tuple[Path, Path]:
    """An .enc.sgn for :func:`_phone`, and its signer's certificate (PEM)."""
    signer = self_signed("CN=der-key-tftp;O=phoneemu", seed="inspect-der-key-tftp", serial=0xD4)
    cert = _phone()[1]
    data = encrypted.build_pki(plaintext=PLAINTEXT, filename="SEP0A0000000D3K.cnf.xml.enc.sgn",
                               signer=file_signer(signer), recipient_cert=cert, timestamp=NOW,  # type: ignore[arg-type]
                               rand=os.urandom)
    enc = folder / "SEP0A0000000D3K.cnf.xml.enc.sgn"
    enc.write_bytes(data)
    pem = folder / "tftp.pem"
    pem.write_bytes(certs.cert_pem(signer[1]))
    return enc, pem


def _one_line(argv: list[str], capsys: pytest.CaptureFixture[str], status: int = 2) -> str:
    assert main(["inspect", *argv]) == status
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, (out, err)
    return err


@pytest.mark.parametrize("fmt", [PKCS8, TRADITIONAL], ids=["pkcs8", "pkcs1"])
def test_a_der_key_decrypts_an_enc_sgn(tmp_path: Path, fmt: serialization.PrivateFormat,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    enc, signer = _enc_sgn(tmp_path)
    key = tmp_path / "phone.key"
    key.write_bytes(_phone()[0].private_bytes(DER, fmt, PLAIN))
    assert main(["inspect", str(enc), "--cert", str(signer), "--key", str(key), "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert err == "" and doc["plaintext"] == PLAINTEXT.decode(), (err, doc.get("checks"))
    assert [c["check"] for c in doc["checks"] if c["ok"]] == ["signature", "decrypt"]


@pytest.mark.parametrize("fmt", [PKCS8, TRADITIONAL], ids=["pkcs8", "sec1"])
def test_a_der_ec_key_is_taken(tmp_path: Path, fmt: serialization.PrivateFormat,
                               capsys: pytest.CaptureFixture[str]) -> None:
    """A file that is not encrypted: the key is checked, then said to be unused (as a PEM one is)."""
    key = tmp_path / "phone-ec.der"
    key.write_bytes(_ec_key().private_bytes(DER, fmt, PLAIN))
    assert main(["inspect", ITL, "--key", str(key), "--json"]) == 0
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert "key phone-ec.der not used: an ITL is not encrypted" in notes, notes


def test_load_private_key_reads_pem_then_der() -> None:
    from phoneemu.inspection import load_private_key

    rsa_key, ec_key = _phone()[0], _ec_key()
    assert isinstance(rsa_key, rsa.RSAPrivateKey) and isinstance(ec_key, ec.EllipticCurvePrivateKey)
    for key in (rsa_key, ec_key):
        want = key.private_numbers()
        for data in (keys.private_key_pem(key), key.private_bytes(DER, PKCS8, PLAIN),
                     key.private_bytes(DER, TRADITIONAL, PLAIN)):
            assert load_private_key(data, source="k").private_numbers() == want  # type: ignore[union-attr]


@pytest.mark.parametrize(("content", "said"), [
    ("cert", "a DER file (CERTIFICATE), not a private key"),
    ("garbage", "no private key found: neither a PEM private key (no BEGIN line) nor a DER one"),
    ("encrypted", "a DER file (ENCRYPTED PRIVATE KEY): a key with a password, which --key does not ask "
                  "for: openssl pkey -inform DER -in FILE -out key.pem writes it without one"),
    ("cut", "der: SEQUENCE at offset 300: truncated: it declares"),
])
def test_a_key_file_that_is_no_usable_key_is_one_line(tmp_path: Path, content: str, said: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    key, cert = _phone()
    data = {"cert": cert.public_bytes(DER),  # type: ignore[attr-defined]
            "garbage": b"\x00not a key\n",
            "encrypted": key.private_bytes(DER, PKCS8, serialization.BestAvailableEncryption(b"secret")),
            "cut": key.private_bytes(DER, PKCS8, PLAIN)[:300]}[content]
    path = tmp_path / "phone.key"
    path.write_bytes(data)
    err = _one_line([ITL, "--key", str(path)], capsys)
    assert err.startswith(f"phoneemu inspect: --key {path}: {said}"), err
    from phoneemu.inspection import load_private_key

    with pytest.raises(DecodeError, match="^" + str(path)):
        load_private_key(data, source=str(path))


def test_a_der_key_given_as_file_or_cert_is_pointed_to_key_as_it_is(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No openssl conversion any more: --key takes the DER key itself."""
    enc, _signer = _enc_sgn(tmp_path)
    key = tmp_path / "phone.der"
    key.write_bytes(_phone()[0].private_bytes(DER, PKCS8, PLAIN))
    err = _one_line([str(key)], capsys)
    assert err == (f"phoneemu inspect: {key}: a DER file (PRIVATE KEY), not a file phoneemu inspect "
                   "decodes (CTL/ITL, .sgn, .enc.sgn, firmware, config XML): give a private key as --key to "
                   "decrypt an .enc.sgn (boot takes a MIC's key as --mic-key)\n"), err
    err = _one_line([str(enc), "--cert", str(key)], capsys)
    assert err == (f"phoneemu inspect: --cert {key}: a DER file (PRIVATE KEY), not a certificate: --key "
                   "takes a private key (PEM or DER) to decrypt an .enc.sgn\n"), err
