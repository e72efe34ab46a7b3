"""Config parsing's two paths (formats.config module rules): input that cannot hold a DTD goes to ET's C
parser, the rest to defusedxml; both give equal trees and equal errors, and nothing with a DTD, an
entity declaration or another encoding ever reaches the C parser."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from defusedxml.ElementTree import fromstring as defused_fromstring
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import DecodeError
from phoneemu.formats import config

SAMPLE = (b'<?xml version="1.0" encoding="UTF-8"?>\n<device>\n  <fullConfig>true</fullConfig>\n'
          b'  <deviceName>SEP0A0000000007</deviceName>\n  <devicePool a="1">x &amp; y<m p="0">&#13;z</m>'
          b'</devicePool>\n  <capfAuthMode>0</capfAuthMode>\n  <encrConfig>false</encrConfig>\n</device>\n')


def _outcome(parse: object, data: bytes) -> tuple[str, str]:
    """What a parse gives: ("tree", its serialisation) or ("error", the message)."""
    try:
        root = parse(data)  # type: ignore[operator]
    except DecodeError as exc:
        return ("error", exc.message)
    return ("tree", ET.tostring(root, encoding="unicode"))


def _slow(data: bytes) -> ET.Element:
    try:
        return defused_fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except config._PARSE_ERRORS as exc:
        raise config._translate(exc, "device", data) from None


def _fast_or_slow(data: bytes) -> ET.Element:
    try:
        return config._defused(data)
    except config._PARSE_ERRORS as exc:
        raise config._translate(exc, "device", data) from None


@pytest.mark.parametrize("data", [
    b'<!DOCTYPE device [<!ENTITY a "aaaa">]><device>&a;</device>',
    b'<?xml version="1.0"?><!DOCTYPE device SYSTEM "http://127.0.0.1/x.dtd"><device/>',
    b'<device><!-- a comment --><x/></device>',
    b'<device><![CDATA[<x>]]></device>',
    '<?xml version="1.0" encoding="UTF-16"?><device/>'.encode("utf-16"),
    b'<?xml version="1.0" encoding="cp037"?>' + '<device/>'.encode("cp037"),
    b'<?xml version="1.0" encoding="ISO-8859-1"?><device>\xe9</device>',
    b'  <?xml version="1.0" encoding="cp037"?><device/>',
    b'<device>\x00</device>',
])
def test_what_may_hold_a_dtd_or_another_encoding_takes_the_defused_path(data: bytes) -> None:
    assert not config._cannot_hold_a_dtd(data)
    assert _outcome(_fast_or_slow, data) == _outcome(_slow, data)


@pytest.mark.parametrize("data", [
    SAMPLE,
    b"<device/>",
    b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?><device>\xc3\xa9</device>',
    b"<?xml version='1.0' encoding='US-ASCII'?><device/>",
])
def test_plain_utf8_without_a_dtd_takes_the_c_parser_and_gives_the_same_tree(data: bytes) -> None:
    assert config._cannot_hold_a_dtd(data)
    assert _outcome(_fast_or_slow, data) == _outcome(_slow, data)


def test_a_dtd_is_refused_as_before() -> None:
    with pytest.raises(DecodeError, match="entity"):
        config.parse(b'<!DOCTYPE device [<!ENTITY a "aaaa">]><device>&a;</device>')


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(SAMPLE) - 1), st.binary(min_size=0, max_size=4)),
                min_size=1, max_size=4))
def test_mutated_configs_give_the_same_tree_or_error_on_both_paths(edits: list[tuple[int, bytes]]) -> None:
    data = bytearray(SAMPLE)
    for at, chunk in edits:
        data[at : at + len(chunk)] = chunk
    raw = bytes(data)
    assert _outcome(_fast_or_slow, raw) == _outcome(_slow, raw)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_give_the_same_tree_or_error_on_both_paths(raw: bytes) -> None:
    assert _outcome(_fast_or_slow, raw) == _outcome(_slow, raw)


def test_depth_is_checked_when_start_tags_could_nest_that_deep() -> None:
    deep = b"<device>" + b"<a>" * 70 + b"</a>" * 70 + b"</device>"
    with pytest.raises(DecodeError, match="deeper than 64"):
        config.parse(deep)
    shallow_but_long = b"<device>" + b"<a/>" * 100 + b"</device>"
    with pytest.raises(DecodeError, match="more than once"):  # walked, not refused for depth
        config.parse(shallow_but_long)
