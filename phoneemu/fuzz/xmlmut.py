"""Hostile XML in the body of a signed device config (spec §C.1: ``SEP<MAC>.cnf.xml.sgn`` carries the
config XML the phone parses once the signature holds; spec §C.2 its elements).

Rules implemented here:

* :func:`mutate_xml` changes XML bytes with one of :data:`XML_OPS`, chosen and driven by the
  ``random.Random`` passed in (the same rng state gives the same bytes). The input need not be
  well-formed (an earlier mutation may have broken it): every operation works on the bytes, finding
  elements with a pattern, never by parsing.
* What the operations make is what a config parser on a phone must refuse or survive: entity
  declarations (billion laughs, external and parameter entities, an external DTD), nesting around the
  64-level limit and far past it, duplicated / dropped / unknown elements (namespaced, undeclared
  prefixes, very long names, very many attributes, a duplicate attribute), hostile values in the typed
  fields (empty, signs, spaces, full-width digits, hex, huge numbers, character references, CDATA,
  child elements), TVS and CAPF server lists with missing, extra or malformed members, wrong or lying
  encoding declarations and byte-order marks, characters XML cannot carry (NUL, controls, invalid
  UTF-8, surrogates), very long text near and past the 256 KiB config limit, markup cut short, and
  another or a second root element.
* A mutant stays bounded: at most :data:`MAX_BODY` bytes (a little past the config limit, so that the
  limit itself is tested).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from phoneemu.formats.config import MAX_SERVERS

__all__ = ["MAX_BODY", "XML_OPS", "mutate_xml"]

MAX_BODY = 256 * 1024 + 4096
"""Largest mutant body: just past ``phoneemu.formats.config.CONFIG_LIMIT`` (256 KiB)."""

_ELEMENT = re.compile(rb"<([A-Za-z_][\w.\-]*)(\s[^<>]*)?>([^<]*)</\1\s*>")
_ROOT_OPEN = re.compile(rb"<device(\s[^<>]*)?>")
_TYPED = (b"fullConfig", b"encrConfig", b"deviceSecurityMode", b"capfAuthMode", b"transportLayerProtocol",
          b"ipAddressMode", b"deviceName", b"loadInformation", b"certHash")
_HOSTILE_VALUES = (b"", b" ", b"-1", b"0", b"4", b"+2", b" 2 ", b"2\t", b"0x2", b"2.0", b"1e3", b"TRUE",
                   b"yes", "\uff12".encode(), b"99999999999999999999999999", b"9" * 5000, b"&#50;",
                   b"<![CDATA[2]]>", b"<b>2</b>", b"2<!-- c -->", b"<?pi 2?>2", b"&amp;", b"&lt;device&gt;",
                   "\u202e2".encode(), b"\xc2\xa02")
_BAD_CHARS = (b"\x00", b"\x01", b"\x0b", b"\x1f", b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xef\xbf\xbe",
              b"&#0;", b"&#xD800;", b"&#x110000;", b"&#xFFFE;", b"&", b"<", b"]]>", b"&unknown;", b"\r")
_DECLARATIONS = (b'<?xml version="1.0" encoding="UTF-16"?>', b'<?xml version="1.0" encoding="ISO-8859-1"?>',
                 b'<?xml version="1.0" encoding="bogus"?>', b'<?xml version="1.1"?>',
                 b'<?xml version="2.0"?>', b'<?xml version="1.0" standalone="no"?>', b"<?xml?>", b"",
                 b'<?xml version="1.0" encoding="UTF-8"?><?xml version="1.0"?>', b' <?xml version="1.0"?>')
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"\xef\xbb\xbf\xef\xbb\xbf")
_MEMBER = b"<member><port>2445</port><address>tvs</address></member>"
_CAPF = b"<capf><phonePort>3804</phonePort><processNodeName>c</processNodeName></capf>"


def _tvs(members: bytes) -> bytes:
    return b"<TVS><members>" + members + b"</members></TVS>"


_SERVER_LISTS = (
    _tvs(b"<member><port>2445</port></member>"),  # no address
    _tvs(b'<member priority="0"><port>2445</port><address>a b</address></member>'),
    _tvs(_MEMBER.replace(b"<member>", b'<member priority="99999">')),
    _tvs(_MEMBER.replace(b"2445", b"70000")),
    _tvs(_MEMBER.replace(b"<port>", b"<port>2446</port><port>")),
    _tvs(_MEMBER * MAX_SERVERS), _tvs(_MEMBER * (MAX_SERVERS + 1)), _tvs(_MEMBER * 300),
    _tvs(_MEMBER.replace(b"<member>", b'<member priority="65535">') + _MEMBER),
    b"<TVS><members/><members/></TVS>",
    b"<TVS>text<members><member>x</member></members></TVS>",
    b"<capfList><capf><phonePort>3804</phonePort></capf></capfList>",  # no processNodeName
    b"<capfList>" + _CAPF.replace(b">3804<", b">-1<") + b"</capfList>",
    b"<capfList>" + _CAPF * MAX_SERVERS + b"</capfList>", b"<capfList>" + _CAPF * 300 + b"</capfList>",
    b"<capfList>" + _CAPF.replace(b">c<", b"><") + b"</capfList>",
)

XmlOp = Callable[[bytes, random.Random], bytes]


def _elements(body: bytes) -> list[re.Match[bytes]]:
    return list(_ELEMENT.finditer(body))


def _root_inside(body: bytes) -> int:
    """Offset just inside ``<device>`` (0 when there is no such tag)."""
    m = _ROOT_OPEN.search(body)
    return m.end() if m else 0


def entities(body: bytes, rng: random.Random) -> bytes:
    """A DTD declaring entities (billion laughs, external, parameter) or naming an external DTD."""
    kind = rng.randrange(5)
    use = b""
    if kind == 0:  # billion laughs: 10 levels of 10 references
        levels = [b'<!ENTITY l0 "lol">'] + [b'<!ENTITY l%d "%s">' % (i, b"&l%d;" % (i - 1) * 10)
                                            for i in range(1, 10)]
        dtd, use = b"<!DOCTYPE device [" + b"".join(levels) + b"]>", b"&l9;"
    elif kind == 1:
        dtd, use = b'<!DOCTYPE device [<!ENTITY x SYSTEM "file:///etc/passwd">]>', b"&x;"
    elif kind == 2:
        dtd = b'<!DOCTYPE device [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>'
    elif kind == 3:
        dtd = b'<!DOCTYPE device SYSTEM "http://127.0.0.1:9/device.dtd">'
    else:
        dtd, use = b'<!DOCTYPE device [<!ENTITY y "2">]>', b"&y;"
    at = body.find(b"<device")
    at = 0 if at < 0 else at
    inside = _root_inside(body)
    if use and inside:
        body = body[:inside] + b"<x>" + use + b"</x>" + body[inside:]
    return body[:at] + dtd + body[at:]


def nesting(body: bytes, rng: random.Random) -> bytes:
    """An element nested around the 64-level limit, or far past it."""
    depth = rng.choice((62, 63, 64, 65, 1000, 20000))
    at = _root_inside(body)
    return body[:at] + b"<n>" * depth + b"x" + b"</n>" * depth + body[at:]


def duplicate_or_drop(body: bytes, rng: random.Random) -> bytes:
    """An element appears twice (next to itself or at the end), or not at all."""
    els = _elements(body)
    if not els:
        return body + body[: rng.randrange(len(body) + 1)]
    m = rng.choice(els)
    mode = rng.randrange(3)
    if mode == 0:
        return body[:m.end()] + m.group(0) + body[m.end():]
    if mode == 1:
        end = body.rfind(b"</device>")
        end = len(body) if end < 0 else end
        return body[:end] + m.group(0) + body[end:]
    return body[:m.start()] + body[m.end():]


def unknown_element(body: bytes, rng: random.Random) -> bytes:
    """An element the model does not know: namespaced, undeclared prefix, huge name, many attributes."""
    el = rng.choice((
        b'<x:y xmlns:x="urn:x">1</x:y>', b"<p:q>1</p:q>", b"<" + b"a" * 20000 + b"/>",
        b"<a " + b" ".join(b'a%d="1"' % i for i in range(2000)) + b"/>", b'<a b="1" b="2"/>',
        b"<a><!-- c --><?pi x?><![CDATA[<device>]]></a>", b'<a xmlns="urn:other">1</a>', b"<1a>x</1a>",
        b"<a>" + b"<b/>" * 5000 + b"</a>", b'<vendorConfig><a b="&#0;"/></vendorConfig>'))
    at = _root_inside(body)
    return body[:at] + el + body[at:]


def typed_value(body: bytes, rng: random.Random) -> bytes:
    """A typed field (security mode, CAPF mode, protocol, booleans ...) with a hostile value."""
    tag = rng.choice(_TYPED)
    value = rng.choice(_HOSTILE_VALUES)
    m = re.search(rb"<" + tag + rb">([^<]*)</" + tag + rb">", body)
    if m:
        return body[:m.start(1)] + value + body[m.end(1):]
    at = _root_inside(body)
    return body[:at] + b"<" + tag + b">" + value + b"</" + tag + b">" + body[at:]


def server_list(body: bytes, rng: random.Random) -> bytes:
    """A TVS or CAPF server list with a member missing its host or port, out of range, or too many."""
    at = _root_inside(body)
    return body[:at] + rng.choice(_SERVER_LISTS) + body[at:]


def encoding(body: bytes, rng: random.Random) -> bytes:
    """The XML declaration replaced (a lying or unknown encoding, version 1.1 / 2.0, twice, none),
    a byte-order mark added, or the body really re-encoded as UTF-16 under its UTF-8 declaration."""
    decl = re.match(rb"\s*<\?xml[^>]*\?>", body)
    rest = body[decl.end():] if decl else body
    mode = rng.randrange(3)
    if mode == 0:
        return rng.choice(_DECLARATIONS) + rest
    if mode == 1:
        return rng.choice(_BOMS) + body
    return body.decode("utf-8", "replace").encode("utf-16")


def bad_chars(body: bytes, rng: random.Random) -> bytes:
    """A character XML cannot carry (or a raw ``&`` / ``<``) inside a text or an attribute."""
    els = _elements(body)
    at = rng.choice(els).start(3) if els else rng.randrange(len(body) + 1)
    return body[:at] + rng.choice(_BAD_CHARS) + body[at:]


def long_text(body: bytes, rng: random.Random) -> bytes:
    """A text of 4 KiB up to just past the config limit (whatever the rest of the body weighs)."""
    n = rng.choice((4096, 65536, 256 * 1024 - len(body) - 64, 256 * 1024))
    at = _root_inside(body)
    return body[:at] + b"<big>" + b"A" * max(0, n) + b"</big>" + body[at:]


def cut_markup(body: bytes, rng: random.Random) -> bytes:
    """The body cut short just before or after a ``<`` or ``>``."""
    cuts = [m.start() + rng.randrange(2) for m in re.finditer(rb"[<>]", body)]
    return body[: rng.choice(cuts)] if cuts else body[: rng.randrange(len(body) + 1)]


def root(body: bytes, rng: random.Random) -> bytes:
    """Another root element, a second root, the root wrapped, namespaced, or no element at all."""
    mode = rng.randrange(5)
    if mode == 0:
        return body.replace(b"<device", b"<devices").replace(b"</device>", b"</devices>")
    if mode == 1:
        return body + b"<device/>"
    if mode == 2:
        return b"<wrap>" + body.split(b"?>", 1)[-1] + b"</wrap>"
    if mode == 3:
        return body.replace(b"<device", b'<device xmlns="urn:cisco"', 1)
    return rng.choice((b"", b" \n", b"<!-- only a comment -->", b"<?xml version=\"1.0\"?>"))


XML_OPS: dict[str, XmlOp] = {
    "entities": entities, "nesting": nesting, "duplicate-or-drop": duplicate_or_drop,
    "unknown-element": unknown_element, "typed-value": typed_value, "server-list": server_list,
    "encoding": encoding, "bad-chars": bad_chars, "long-text": long_text, "cut-markup": cut_markup,
    "root": root,
}
"""Every operation by name."""

_NAMES = tuple(XML_OPS)


def mutate_xml(body: bytes, rng: random.Random) -> bytes:
    """``body`` changed by one operation of :data:`XML_OPS` chosen with ``rng``: at most
    :data:`MAX_BODY` bytes."""
    name = _NAMES[rng.randrange(len(_NAMES))]
    return XML_OPS[name](body, rng)[:MAX_BODY]
