"""``phoneemu.formats._tlv.printable``: what a hostile file or server writes is shown escaped, each
character as Python writes it, so an escape has one reading (``\\u202e``, was ``\\x202e``: a space and
``2e``, or the bidi override?); ``\\x80`` to ``\\xff`` are undecodable bytes only, a character of those
code points ``\\u0080`` (was ``\\x80`` for both)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneemu.formats._tlv import printable, printable_latin1


@pytest.mark.parametrize(("text", "shown"), [
    ("\x07", "\\x07"),
    ("\x1b[31m", "\\x1b[31m"),
    ("\x85", "\\u0085"),  # NEXT LINE, a character (C1)
    ("\u202e00", "\\u202e00"),  # RIGHT-TO-LEFT OVERRIDE, then two digits
    ("\u2028", "\\u2028"),
    ("\U000e0001", "\\U000e0001"),  # LANGUAGE TAG
    ("caf\u00e9 \u65e5\u672c", "caf\u00e9 \u65e5\u672c"),  # printable letters stay
    ("\udcff", "\\xff"),  # an undecodable byte kept by surrogateescape
])
def test_each_escape_has_one_reading(text: str, shown: str) -> None:
    assert printable(text) == shown


@pytest.mark.parametrize(("text", "shown"), [
    ("a\ud800b", "a\\ud800b"),  # JSON's "\ud800": a lone surrogate, no undecodable byte
    ("\udfff\udc80", "\\udfff\\x80"),  # with an undecodable byte beside it
    ("\ud83d\x07", "\\ud83d\\x07"),  # half of an emoji's pair, a control character
])
def test_a_lone_surrogate_is_escaped_as_its_code_point(text: str, shown: str) -> None:
    """Was: UnicodeEncodeError out of printable() (so out of the error message naming the bad input)."""
    assert printable(text) == shown


def test_a_c1_character_and_an_undecodable_byte_are_told_apart() -> None:
    """U+0080 (a character: a C1 control) and byte 0x80 (no UTF-8: surrogateescape's U+DC80) were both
    shown ``\\x80``."""
    char, byte = "\u0080", b"\x80".decode("utf-8", errors="surrogateescape")
    assert (printable(char), printable(byte)) == ("\\u0080", "\\x80")
    assert printable("\u00ad") == "\\u00ad"  # SOFT HYPHEN: not printable, a character
    assert printable("\x7f\x1b") == "\\x7f\\x1b"  # below 0x80 no byte is undecodable: \\xNN is as Python's


def test_latin1_text_is_bytes() -> None:
    """An HTTP head decoded as Latin-1: each character the byte it was (byte 0x8e, ``\\x8e``); its
    printable characters as they are."""
    assert printable_latin1("Bad\x8e\x1b[2J caf\xe9 \u202e") == "Bad\\x8e\\x1b[2J caf\xe9 \\u202e"


@given(st.text(alphabet=st.characters(codec=None, categories=None)))
def test_printable_never_raises_and_gives_printable_text(text: str) -> None:
    shown = printable(text)
    assert shown.isprintable()  # ("" too)
    shown.encode("utf-8")  # no surrogate left: it can be written anywhere (raises otherwise)
