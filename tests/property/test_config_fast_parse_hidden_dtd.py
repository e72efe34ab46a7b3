"""Config parsing's fast path (formats.config module rules) cannot be handed a DTD hidden by an encoding.

The check that routes input to ET's C parser reads an XML declaration only so far (an encoding name of
at most 40 characters, a declaration of at most 256), so a declaration past those bounds after a UTF-8
byte-order mark, or a long alias of an EBCDIC codec, passes it with ``<!DOCTYPE`` written in EBCDIC
(no bytes ``<!``). Why that is still safe, pinned here: expat takes an encoding it does not know only
when every byte meaning an ASCII character of XML syntax means that character itself (``<`` only from
0x3C, ``!`` only from 0x21), so a ``<!`` it reads is the bytes ``<!``; it refuses the others ("unknown
encoding"). UTF-16 needs a NUL byte or its byte-order mark, both sent to the slow path. And a
memoryview's size is its bytes, not its items: the config limit holds for any view."""

from __future__ import annotations

import encodings.aliases
import xml.etree.ElementTree as ET

import pytest

from phoneemu.errors import DecodeError, SizeLimitError
from phoneemu.formats import config

BODY = '<!DOCTYPE device [<!ENTITY a "EXPANDED">]><device><deviceName>&a;</deviceName></device>'


def _single_byte_codecs() -> list[str]:
    """Python's codecs that map every byte to one character (what expat may take as an unknown one)."""
    out = []
    for name in sorted(set(encodings.aliases.aliases.values())):
        try:
            if len(bytes(range(256)).decode(name, "replace")) == 256:
                out.append(name)
        except (LookupError, ValueError, TypeError):
            continue
    return out


def _with_dtd(name: str) -> bytes | None:
    """A config with a DTD in codec ``name``, declared past the check's bounds after a UTF-8 BOM."""
    try:
        body = BODY.encode(name)
    except (UnicodeError, LookupError):
        return None
    return b'\xef\xbb\xbf<?xml version="1.0"' + b" " * 300 + f' encoding="{name}"?>'.encode() + body


@pytest.mark.parametrize("name", _single_byte_codecs())
def test_a_dtd_in_any_single_byte_encoding_is_refused(name: str) -> None:
    data = _with_dtd(name)
    if data is None:
        pytest.skip(f"{name} cannot write the test's DTD")
    if config._cannot_hold_a_dtd(data):  # only when the codec writes "<!" otherwise than as b"<!"
        assert b"<!" not in data
        with pytest.raises(ET.ParseError, match="unknown encoding"):
            ET.fromstring(data)  # the fast path's parser, on purpose
    with pytest.raises(DecodeError):
        config.parse(data)


def test_a_long_alias_of_an_ebcdic_codec_reaches_the_c_parser_which_refuses_it() -> None:
    alias = "ebcdic-" + "-" * 40 + "cp-us"  # Python reads it as ebcdic_cp_us (cp037)
    data = f'<?xml version="1.0" encoding="{alias}"?>'.encode() + BODY.encode("cp037")
    assert config._cannot_hold_a_dtd(data)
    with pytest.raises(DecodeError, match="unknown encoding"):
        config.parse(data)


@pytest.mark.parametrize("shape", ["2d", "uint64"])
def test_the_limit_counts_a_memoryviews_bytes_not_its_items(shape: str) -> None:
    """Was: ``len()`` of a view, its items — one row of a 2-D view of 300 KiB passed a 256 KiB limit."""
    data = b"<device>" + b" " * (300 << 10) + b"</device>"
    data += b" " * (-len(data) % 8)
    view = memoryview(data).cast("B", shape=[1, len(data)]) if shape == "2d" else memoryview(data).cast("Q")
    with pytest.raises(SizeLimitError, match=f"{len(data)} bytes exceeds"):
        config.parse(view)  # type: ignore[arg-type]


def test_a_memoryview_within_the_limit_parses_as_its_bytes() -> None:
    data = b"<device><fullConfig>true</fullConfig></device>"
    assert config.parse(memoryview(data)) == config.parse(data)  # type: ignore[arg-type]
