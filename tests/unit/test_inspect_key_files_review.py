"""``inspect --key FILE`` (review of 66daff8): a file is a flash's raw ``symmetric.key`` only when its 16 or
32 bytes are not text. A file holding a mistyped manual key (31 hex digits and a line end: 32 bytes) was taken
as a 256-bit raw key ("file needs a 128-bit key, the configured key has 256 bits", exit 1); it now says how
many hex digits it holds (exit 2), as the same digits on the command line do. A file read as raw bytes that
does not decrypt (a DER key cut to 32 bytes) says it was read so; a manual key given but not used is noted
as "the manual key given" (was "key the manual key given"); ``--key -`` says inspect reads no standard input.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from phoneemu.cli import main
from phoneemu.crypto import keys
from tests.unit.test_inspect_manual_key import KEY, PLAINTEXT, _pki, _signer, _symmetric  # their files


@pytest.mark.parametrize(("content", "digits"), [
    (KEY[:-1].encode() + b"\n", 31),  # 32 bytes: was read as a 256-bit raw key
    (KEY[:15].encode() + b"\n", 15),  # 16 bytes: was read as a 128-bit raw key
    (KEY[:-1].encode(), 31),  # 31 bytes: was "no private key found", no word of the digits
])
def test_a_file_holding_a_mistyped_manual_key_says_its_digits(tmp_path: Path, content: bytes, digits: int,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    enc = _symmetric(tmp_path)
    typo = tmp_path / "manual.key"
    typo.write_bytes(content)
    assert main(["inspect", str(enc), "--key", str(typo)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, (out, err)
    assert (f"holds {digits} hex digits, an odd number (two make a byte): a manual key has 32 (a 128-bit "
            "key) or 64") in err, err


def test_a_raw_key_file_that_does_not_decrypt_says_it_was_read_as_raw_bytes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A DER private key cut to 32 bytes is read as a flash's symmetric.key (a real one may begin so); the
    failed decrypt says so (was only: give the private key as --key, as the user thought they did)."""
    enc = _pki(tmp_path)
    key = serialization.load_pem_private_key(keys.private_key_pem(_signer()[0]), password=None)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    cut = tmp_path / "phone.der"
    cut.write_bytes(der[:32])
    assert main(["inspect", str(enc), "--key", str(cut)]) == 1
    _, err = capsys.readouterr()
    assert "phone.der was read as a phone flash's symmetric.key (its 32 raw bytes" in err, err


def test_a_manual_key_not_used_is_noted_as_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    xml = tmp_path / "SEP0A00000005C7.cnf.xml"
    xml.write_bytes(PLAINTEXT)
    assert main(["inspect", str(xml), "--key", KEY]) == 0
    out, _ = capsys.readouterr()
    assert "Note: the manual key given not used: " in out and KEY not in out, out


def test_a_key_from_standard_input_is_said_not_read(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["inspect", str(_symmetric(tmp_path)), "--key", "-"]) == 2
    _, err = capsys.readouterr()
    assert "--key -: No such file or directory (inspect reads a key from a file or the command line, not " \
           "standard input" in err, err
