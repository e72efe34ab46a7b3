"""Extra elements of a device config: remembered by their tree, not serialised again (issue #6).

A fleet parses a config a phone, and every one carries the same ``devicePool``; ``ET.tostring`` of it was
about a third of a parse. The text remembered must be exactly what ET's serialisation gives.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

import pytest

from phoneemu.errors import DecodeError
from phoneemu.formats import config as cfg_fmt

DEVICE_POOL = ('<devicePool>\n    <callManagerGroup>\n      <members>\n        <member priority="0">\n'
               '          <callManager>\n            <ports><sipPort>5060</sipPort></ports>\n'
               '            <processNodeName>127.0.0.1</processNodeName>\n          </callManager>\n'
               '        </member>\n      </members>\n    </callManagerGroup>\n  </devicePool>')


def _config(name: str, *extras: str) -> bytes:
    body = "".join(f"\n  {x}" for x in extras)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<device>\n  <fullConfig>true</fullConfig>\n'
            f'  <deviceName>{name}</deviceName>{body}\n  <encrConfig>false</encrConfig>\n'
            '</device>\n').encode()


def _ets_own(data: bytes, tag: str) -> str:
    """What ET itself writes for the top-level element ``tag`` of ``data`` (the module's CR rule applied)."""
    el = next(c for c in ET.fromstring(data) if c.tag == tag)
    el.tail = None
    return ET.tostring(el, encoding="unicode").replace("\r", "&#13;")


def test_an_extra_seen_before_is_not_serialised_again(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_fmt.parse(_config("SEP0A0000000001", DEVICE_POOL, "<phoneModel>CP-8861</phoneModel>"))
    calls: list[object] = []
    real = ET.tostring

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args[0])
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ET, "tostring", counting)
    data = _config("SEP0A0000000002", DEVICE_POOL, "<phoneModel>CP-8861</phoneModel>")
    got = cfg_fmt.parse(data)  # another phone's config: other bytes, the same extra elements
    assert calls == []
    assert got.device_name == "SEP0A0000000002"
    assert got.extra["devicePool"] == _ets_own(data, "devicePool")
    assert got.extra["phoneModel"] == "<phoneModel>CP-8861</phoneModel>"


# Trees that differ only where a serialisation can tell them apart: each must keep its own text.
VARIANTS = [
    ("x", "<x><a/>t</x>"),
    ("x", "<x><a>t</a></x>"),
    ("x", "<x><a/><b/></x>"),
    ("x", "<x><a><b/></a></x>"),
    ("x", "<x />"),
    ("x", "<x></x>"),
    ("x", "<x> </x>"),
    ("x", '<x p="1" q="2"/>'),
    ("x", '<x q="2" p="1"/>'),
    ("x", '<x p="1&amp;2 &lt;"/>'),
    ("x", "<x>a &amp; b &lt; c &gt; d</x>"),
    ("x", "<x>line&#13;\nnext</x>"),
    ("x", "<x>line\nnext</x>"),
    ("x", "<x><y>1</y>\n<y>2</y>\n</x>"),
    ("x", "<x><y>1</y><y>2</y></x>"),
    ("x", '<x xmlns:n="urn:a"><n:y/></x>'),
    ("x", '<x xmlns:n="urn:b"><n:y/></x>'),
    ("x", "<x>\u00e9\u4e2d</x>"),
    ("sipLines", '<sipLines><line button="1"><authName>alice</authName></line></sipLines>'),
]


@pytest.mark.parametrize("rounds", [1, 3])
def test_every_variant_gives_ets_own_serialisation(rounds: int) -> None:
    for r in range(rounds):  # later rounds are answered from what the first remembered
        for i, (tag, xml) in enumerate(VARIANTS):
            data = _config(f"SEP0A00000{r:02d}{i:03d}", xml)
            assert cfg_fmt.parse(data).extra[tag] == _ets_own(data, tag), xml


def test_what_is_remembered_stays_bounded_and_without_namespaces() -> None:
    for i in range(cfg_fmt._SERIALISED_MAX_ITEMS + 40):
        cfg_fmt.parse(_config("SEP0A0000000003", f"<x>{i}</x>", '<z xmlns:n="urn:a"><n:y/></z>'))
    assert 0 < len(cfg_fmt._SERIALISED) <= cfg_fmt._SERIALISED_MAX_ITEMS
    assert not any("xmlns" in text for text in cfg_fmt._SERIALISED.values())
    big = "<x>" + "a" * (cfg_fmt._EXTRA_MEMO_CHARS + 1) + "</x>"
    cfg_fmt.parse(_config("SEP0A0000000004", big))
    assert big not in cfg_fmt._SERIALISED.values()


def test_whitespace_check_is_strs_own() -> None:
    """``_has_space`` (one call) says what the per-character ``str.isspace`` loop said."""
    for ch in map(chr, range(0x3100)):
        for text in (ch, f"a{ch}", f"{ch}b", f"a{ch}b"):
            assert cfg_fmt._has_space(text) == any(c.isspace() for c in text), repr(text)
    assert cfg_fmt._has_space("") is False
    with pytest.raises(DecodeError, match="not a host name"):
        cfg_fmt.parse(_config("SEP0A0000000005", "").replace(
            b"<encrConfig>", b"<TVS><members><member><port>1</port><address>a\xc2\x85b</address></member>"
                             b"</members></TVS><encrConfig>"))


def _held_bytes(keys: object) -> int:
    """What the tuples and strings reachable from ``keys`` take (each object once)."""
    seen: set[int] = set()
    total = 0
    stack = [keys]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or not isinstance(obj, (tuple, list, str)):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if not isinstance(obj, str):
            stack.extend(obj)
    return total


def test_keys_of_many_element_trees_stay_small_whatever_configs_are_parsed() -> None:
    """A hostile config's extra of ~800 tiny elements is under 4 KiB of text, but its key held a tuple an
    element: 256 of them kept ~20 MB (found by review). The trees remembered are bounded in elements."""
    cfg_fmt._SERIALISED.clear()
    children = "<a/>" * 800
    for i in range(cfg_fmt._SERIALISED_MAX_ITEMS):  # as many as it keeps: none emptied by its count
        cfg_fmt.parse(_config(f"SEP0A{i:010d}", f'<x n="{i}">{children}</x>'))
    assert _held_bytes(list(cfg_fmt._SERIALISED)) < 4 << 20  # the texts themselves: at most 1 MiB
    again = _config("SEP0A0000000006", DEVICE_POOL)
    assert cfg_fmt.parse(again).extra["devicePool"] == _ets_own(again, "devicePool")
