"""``phoneemu.formats._tlv.printable``: what a hostile file or server writes is shown escaped, each
character as Python writes it, so an escape has one reading (``\\u202e``, was ``\\x202e``: a space and
``2e``, or the bidi override?)."""

from __future__ import annotations

import pytest

from phoneemu.formats._tlv import printable


@pytest.mark.parametrize(("text", "shown"), [
    ("\x07", "\\x07"),
    ("\x1b[31m", "\\x1b[31m"),
    ("\x85", "\\x85"),
    ("\u202e00", "\\u202e00"),  # RIGHT-TO-LEFT OVERRIDE, then two digits
    ("\u2028", "\\u2028"),
    ("\U000e0001", "\\U000e0001"),  # LANGUAGE TAG
    ("caf\u00e9 \u65e5\u672c", "caf\u00e9 \u65e5\u672c"),  # printable letters stay
    ("\udcff", "\\xff"),  # an undecodable byte kept by surrogateescape
])
def test_each_escape_has_one_reading(text: str, shown: str) -> None:
    assert printable(text) == shown
