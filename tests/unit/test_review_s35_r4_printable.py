"""Review S35 R4 of eddd5e5 (``printable``: a lone surrogate shown as its code point).

Its slow path (taken when the text holds a surrogate that is no undecodable byte, JSON's ``"\\ud800"``)
showed every undecodable byte as ``\\xNN``, while the usual path reads runs of them as UTF-8 again: the
same bytes were ``é`` in one message and ``\\xc3\\xa9`` in another, by what stood elsewhere in the text.
Now the text around such a surrogate is shown as it is without it.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneemu.formats._tlv import printable

#: undecodable bytes as surrogateescape keeps them (a byte string read as ASCII): runs of them may be UTF-8
_ESCAPED_BYTES = st.binary(max_size=24).map(lambda raw: raw.decode("ascii", errors="surrogateescape"))


@pytest.mark.parametrize(("text", "shown"), [
    ("\udcc3\udca9\ud800", "\u00e9\\ud800"),  # é's two bytes, then JSON's "\ud800"
    ("\ud800\udcc3\udca9", "\\ud800\u00e9"),
    ("\udcc3\ud800\udca9", "\\xc3\\ud800\\xa9"),  # split by it: two bytes that are no character each
    ("\udcff\udc00", "\\xff\\udc00"),  # U+DC00 is no undecodable byte (those are U+DC80..U+DCFF)
])
def test_the_text_around_a_lone_surrogate_is_shown_as_without_it(text: str, shown: str) -> None:
    assert printable(text) == shown


@given(_ESCAPED_BYTES, st.sampled_from(["\ud800", "\udbff", "\udc00", "\udc7f", "\udd00", "\udfff"]),
       _ESCAPED_BYTES)
def test_a_lone_surrogate_changes_nothing_but_itself(before: str, lone: str, after: str) -> None:
    assert printable(before + lone + after) == printable(before) + f"\\u{ord(lone):04x}" + printable(after)
