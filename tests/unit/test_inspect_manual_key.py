"""``inspect --key`` decrypts a manual-key (symmetric, spec §C.5) ``.enc.sgn`` as the phone does: the key
as typed into the phone (32 or 64 hex digits) on the command line or in a file holding only it, or a
phone flash's ``symmetric.key`` (its raw bytes).

Was: ``--key <32 hex digits>`` "No such file or directory", a file holding the hex "no private key found",
a private key "file uses encryption mode 1, not PKI" with no word of what to give instead. A key of the
other method now says which key the file needs; a key given on the command line is never shown.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography import x509

from phoneemu.cli import main
from phoneemu.crypto import keys
from phoneemu.formats import encrypted
from tests.signer_helpers import file_signer, self_signed

NOW = 1_780_000_000
KEY = "00112233445566778899AABBCCDDEEFF"
KEY256 = "00112233445566778899aabbccddeeff" * 2
PLAINTEXT = b"<device><deviceSecurityMode>3</deviceSecurityMode></device>"
NAME = "SEP0A00000005C5.cnf.xml.enc.sgn"


def _signer() -> tuple[keys.PrivateKey, x509.Certificate]:
    return self_signed("CN=manual-key-tftp;O=phoneemu", seed="inspect-manual-key-tftp", serial=0x5C5)


def _symmetric(folder: Path, key: str = KEY) -> Path:
    data = encrypted.build_symmetric(plaintext=PLAINTEXT, filename=NAME, signer=file_signer(_signer()),
                                     key=bytes.fromhex(key), timestamp=NOW, rand=os.urandom)
    path = folder / NAME
    path.write_bytes(data)
    return path


def _pki(folder: Path) -> Path:
    phone = self_signed("CN=SEP0A00000005C5;O=phone", seed="inspect-manual-key-phone", serial=0x5C6)
    data = encrypted.build_pki(plaintext=PLAINTEXT, filename=NAME, signer=file_signer(_signer()),
                               recipient_cert=phone[1], timestamp=NOW, rand=os.urandom)
    path = folder / NAME
    path.write_bytes(data)
    return path


def _private_key(folder: Path) -> Path:
    path = folder / "mic.key"
    path.write_bytes(keys.private_key_pem(_signer()[0]))
    return path


def _decrypted(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["inspect", *argv, "--json"]) == 0
    out, err = capsys.readouterr()
    doc: dict[str, object] = json.loads(out)
    assert err == "" and doc["plaintext"] == PLAINTEXT.decode(), (err, doc.get("checks"))
    return doc


@pytest.mark.parametrize("key", [KEY, KEY.lower(), KEY256], ids=["128-upper", "128-lower", "256"])
def test_the_manual_key_as_hex_on_the_command_line(tmp_path: Path, key: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    enc = _symmetric(tmp_path, key)
    doc = _decrypted([str(enc), "--key", key], capsys)
    assert key.lower() not in json.dumps(doc).lower()  # the key is never shown


@pytest.mark.parametrize("content", [KEY.encode(), KEY.encode() + b"\n",
                                     b"  " + KEY.lower().encode() + b"\r\n"],
                         ids=["bare", "line", "blanks-crlf"])
def test_a_file_holding_only_the_hex(tmp_path: Path, content: bytes,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    enc = _symmetric(tmp_path)
    hexfile = tmp_path / "manual.key"
    hexfile.write_bytes(content)
    _decrypted([str(enc), "--key", str(hexfile)], capsys)


@pytest.mark.parametrize("key", [KEY, KEY256], ids=["128", "256"])
def test_a_flash_symmetric_key_file(tmp_path: Path, key: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A phone's flash keeps the manual key as its raw bytes (``phoneemu.phone.flash``)."""
    enc = _symmetric(tmp_path, key)
    raw = tmp_path / "symmetric.key"
    raw.write_bytes(bytes.fromhex(key))
    _decrypted([str(enc), "--key", str(raw)], capsys)


def test_a_file_of_the_hex_name_comes_first(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    enc = _symmetric(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / KEY256).write_bytes(KEY.encode())  # a file named like a 256-bit key, holding the right one
    _decrypted([str(enc), "--key", KEY256], capsys)


def test_a_wrong_manual_key_fails_the_decrypt_check_without_showing_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    enc = _symmetric(tmp_path)
    wrong = "ffeeddccbbaa99887766554433221100"
    assert main(["inspect", str(enc), "--key", wrong]) == 1
    out, err = capsys.readouterr()
    assert "decrypt: FAILED" in out and "decrypt check failed" in err, (out, err)
    assert wrong not in out and wrong not in err


def test_a_private_key_for_a_manual_key_file_says_what_to_give(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    enc = _symmetric(tmp_path)
    assert main(["inspect", str(enc), "--key", str(_private_key(tmp_path))]) == 1
    out, err = capsys.readouterr()
    assert "decrypt: FAILED" in out, out
    assert "file uses encryption mode 1" in err and "symmetric.key" in err, err
    assert "decrypted with the manual key: give it as --key, 32 or 64 hex digits" in err, err


def test_a_manual_key_for_a_pki_file_says_what_to_give(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    enc = _pki(tmp_path)
    assert main(["inspect", str(enc), "--key", KEY]) == 1
    out, err = capsys.readouterr()
    assert "file uses encryption mode 0" in err and "PKI .enc.sgn" in err and "private key" in err, err
    assert KEY not in out


@pytest.mark.parametrize(("key", "said"), [
    ("0" * 32, "an all-zero manual key clears a phone's key (spec §C.5)"),
    ("0" * 64, "an all-zero manual key clears a phone's key (spec §C.5)"),
    (KEY[:-1], "no such file, nor a manual key: 31 hex digits, an odd number (two make a byte): "
     "a manual key has 32 (a 128-bit key) or 64"),
    (KEY + "0", "no such file, nor a manual key: 33 hex digits, an odd number (two make a byte): "
     "a manual key has 32 (a 128-bit key) or 64"),
])
def test_a_key_that_is_not_one_is_said(tmp_path: Path, key: str, said: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    enc = _symmetric(tmp_path)
    assert main(["inspect", str(enc), "--key", key]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and said in err, err


def test_a_manual_key_not_used_is_noted_without_the_key(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    xml = tmp_path / "SEP0A00000005C5.cnf.xml"
    xml.write_bytes(PLAINTEXT)
    assert main(["inspect", str(xml), "--key", KEY]) == 0
    out, _ = capsys.readouterr()
    assert "Note: the manual key given not used" in out and KEY not in out, out

