"""A mistyped manual config key is told what is wrong with it (spec §C.5; :func:`phoneemu.formats.encrypted.
hex_key_problem`, the one wording of ``boot --key``, ``phone set-key``, a scenario's ``set-key`` and
``inspect --key``'s parser).

Was: ``boot --key`` of 31 hex digits said "symmetric key '...' is not hex" (bytes.fromhex's refusal of an
odd count), and :func:`~phoneemu.formats.encrypted.parse_hex_key` "is not 32 or 64 hex digits" for a key
with a stray ``x`` — neither said which character, nor how many digits the phone takes.
"""

from __future__ import annotations

import pytest

from phoneemu.cli import main
from phoneemu.errors import DecodeError, EncodeError
from phoneemu.formats.encrypted import hex_key_problem, parse_hex_key
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile

MAC = "001122334455"


def _phone(profile: str) -> Phone:
    return Phone(mac=MAC, profile=get_profile(profile), flash=None, clock=lambda: 0)


@pytest.mark.parametrize(("typed", "said"), [
    ("0" * 31, "31 hex digits, an odd number (two make a byte): cp-7942-symmetric takes 32 (a 128-bit key)"),
    ("00:11:2", "5 hex digits, an odd number (two make a byte): cp-7942-symmetric takes 32 (a 128-bit key)"),
    ("0x" + "1" * 30, "character 'x' at position 2 is not a hex digit (0-9, a-f)"),
    (" 00:11:g2", "character 'g' at position 8 is not a hex digit (0-9, a-f)"),
], ids=["odd", "odd-with-colons", "0x", "g-after-colons"])
def test_the_phone_says_what_is_wrong_with_a_typed_key(typed: str, said: str) -> None:
    with pytest.raises(EncodeError) as caught:
        _phone("cp-7942-symmetric").set_symmetric_key(typed)
    assert said in str(caught.value) and "is not hex" not in str(caught.value), caught.value
    assert caught.value.path == "symmetric_key"


def test_a_model_without_a_manual_key_is_told_the_counts_a_manual_key_has() -> None:
    with pytest.raises(EncodeError, match=r"31 hex digits, an odd number .*: a manual key has 32 \(a 128-bit "
                                          r"key\) or 64 \(a 256-bit key\)"):
        _phone("cp-8861").set_symmetric_key("0" * 31)


@pytest.mark.parametrize(("typed", "said"), [
    ("0" * 31, "31 hex digits, an odd number (two make a byte): a manual key has 32 (a 128-bit key) or 64"),
    ("0" * 48, "48 hex digits: a manual key has 32 (a 128-bit key) or 64 (a 256-bit key)"),
    ("", "no hex digits: a manual key has 32"),
    ("  0x" + "0" * 30, "character 'x' at position 4 is not a hex digit"),
    ("00 11" * 8, "character ' ' at position 3 is not a hex digit"),
], ids=["odd", "48", "empty", "0x-after-spaces", "spaces"])
def test_parse_hex_key_says_the_same(typed: str, said: str) -> None:
    with pytest.raises(DecodeError) as caught:
        parse_hex_key(typed)
    assert said in str(caught.value), caught.value
    assert hex_key_problem(typed) is not None and hex_key_problem(typed) in str(caught.value)


def test_a_right_key_has_no_problem() -> None:
    assert hex_key_problem("0a" * 16) is None and hex_key_problem(" " + "0A" * 32 + "\n") is None
    assert hex_key_problem("0a:" * 15 + "0a", ignore=":") is None
    assert hex_key_problem("0a" * 16, digits=(64,), wants="x takes") == (
        "32 hex digits: x takes 64 (a 256-bit key)")


def test_boot_key_of_31_digits_is_said_so(capsys: pytest.CaptureFixture[str]) -> None:
    """Refused before anything is fetched (exit 2), the option named."""
    assert main(["boot", "--tftp", "127.0.0.1:9", "--mac", MAC, "--profile", "cp-7942-symmetric",
                 "--key", "0" * 31]) == 2
    err = capsys.readouterr().err
    assert "--key HEX: " in err and "31 hex digits, an odd number" in err, err
    assert "cp-7942-symmetric takes 32 (a 128-bit key)" in err, err
