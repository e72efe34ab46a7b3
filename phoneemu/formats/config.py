"""Device configuration XML (``SEP<MAC>.cnf.xml``) and config file names (spec §C.2, §C.4, §H.5).

Rules implemented here:

* Parsing refuses a DTD, an entity declaration (entity expansion) or an external reference with a
  :class:`DecodeError` naming the problem (defusedxml); input above ``limit`` (256 KiB by default) is
  refused with :class:`SizeLimitError` before any parsing. Input that cannot hold any of them is parsed
  by ET's C parser instead (ours, issue #6: ~2x faster, a fleet parses a config a phone): UTF-8 (no
  UTF-16/32 byte-order mark, no NUL byte, no XML declaration naming another encoding) without the bytes
  ``<!`` — every DTD begins with them, and in UTF-8 ASCII bytes mean only themselves; comments and
  CDATA sections also take the defusedxml path. Both paths give equal trees and equal errors.
* The root element is ``<device>``. The security elements of spec §H.5 become typed fields:
  ``fullConfig``, ``encrConfig``, ``certHash``, ``capfAuthMode`` (0..4), ``capfList`` (≤5
  ``<capf><phonePort>/<processNodeName>``), ``TVS`` (≤5 ``<members><member priority="n">
  <port>/<address>``), ``loadInformation``, ``deviceSecurityMode`` (1..3),
  ``transportLayerProtocol`` and ``ipAddressMode``; ``networkLocale`` and ``dialTemplate`` (the
  static files the phone fetches after the config, spec §C.6 row 6: :attr:`DeviceConfig.static_files`).
  Every other top-level element is kept
  verbatim in ``extra`` (tag → canonical XML of the whole element) and written back by
  :func:`build`, so ``parse(build(c)) == c``. A top-level element seen twice is a DecodeError.
* The stub ("short") config of spec §C.4 is :func:`stub_of`: ``fullConfig=false``,
  ``encrConfig=true``, ``certHash`` and copies of ``ipAddressMode``, ``loadInformation``,
  ``capfAuthMode`` and ``capfList``; nothing else.
* File names (spec §C.2): ``SEP<MAC>.cnf.xml`` plain, ``.sgn`` signed, ``.enc.sgn`` encrypted;
  ``XmlDefault.cnf.xml`` for auto-registration. A MAC is exactly 12 upper-case hex digits.

Our conventions (spec [UNK] or [INF]):

* ``<deviceName>`` carries :attr:`DeviceConfig.device_name`; CUCM's own element for it is unknown.
* Static files named by a config (spec §C.6 row 6, seed "File Authentication": ring list, locale,
  dial plan): ``<networkLocale>`` (any locale) makes the phone ask for the locale's tone file
  ``g3-tones.xml`` by that bare name, as the 7962 capture shows (§C.6 row 6); ``<dialTemplate>``
  names the dial-rule file itself (e.g. ``AppDialRules.xml``). Only plain file names (letters,
  digits, ``._-``, no path, not starting with a dot) are requested; any other value is ignored.
* Values equal to their documented default are omitted when building (absent
  ``deviceSecurityMode`` means 1, non-secure), except ``fullConfig``, ``capfAuthMode`` and
  ``encrConfig``, which are always written because the phone reads them from every config (§C.4).
* Text of the typed elements is stripped of surrounding whitespace when parsing; builders refuse
  values with surrounding whitespace or characters XML cannot carry (so the round trip holds).
* Attributes of the root element (e.g. CUCM's ``xsi:type``) are not kept; an undeclared namespace
  prefix on the root element is tolerated (it is declared before parsing).
* Comments and processing instructions are dropped.
* What a fleet's configs repeat is held once per process (issue #6: thousands of phones hold their
  previous config): :func:`parse` returns the same :class:`Server` objects and server tuples (host names
  of at most 255 characters), the same ``extra`` mapping (the same elements in the same order) and the
  same text of ``networkLocale``, ``dialTemplate``, ``loadInformation`` and extra elements (up to 4 KiB)
  for equal values (an ``extra`` of at most 8 KiB). Each is remembered in a bounded memo, so the memory
  this keeps stays small whatever configs are parsed (not ``sys.intern``: CPython 3.12 keeps every
  interned string for the life of the process); only what differs (the
  device name, ``certHash``) is the config's own. An extra element whose tree was seen before (tag, text,
  tail, attributes and children alike) gets the text remembered for it instead of being serialised
  again (at most 256 texts of up to 4 KiB, none with namespaces, of 8,192 elements in all). Equal bytes
  parsed again (phones holding the same config) return the same :class:`DeviceConfig` (a bounded
  ``_tlv.Memo``; failures are never remembered). A parsed config is read, never changed.
* A carriage return in the text of an extra element (``&#13;`` in the input) is written as the
  character reference ``&#13;`` (in ``extra`` and by :func:`build`): a literal CR would be read
  back as a line feed (XML 1.0 §2.11 end-of-line handling) and the round trip would not hold.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET  # building, serialising; parsing only input that holds no DTD
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from cryptography import x509
from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import fromstring as _defused_fromstring

from phoneemu.crypto import certs
from phoneemu.errors import DecodeError, EncodeError, SizeLimitError
from phoneemu.formats._tlv import Memo
from phoneemu.wire import as_bytes

__all__ = [
    "CONFIG_LIMIT",
    "DEFAULT_CONFIG_NAME",
    "DEFAULT_LIMIT",
    "FMT",
    "LOCALE_TONES_FILE",
    "MAX_SERVERS",
    "CallManager",
    "ConfigFileName",
    "DeviceConfig",
    "Server",
    "build",
    "call_managers",
    "config_file_name",
    "default_config_name",
    "device_name_for",
    "device_pool_xml",
    "digest_credentials",
    "line_number",
    "normalise_mac",
    "parse",
    "parse_config_file_name",
    "secure_directory_url",
    "stub_for_certificate",
    "stub_of",
    "validate_mac",
]

FMT = "config"
CONFIG_LIMIT = 256 * 1024
DEFAULT_LIMIT = CONFIG_LIMIT
MAX_SERVERS = 5
DEFAULT_CONFIG_NAME = "XmlDefault.cnf.xml"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

ConfigKind = Literal["plain", "sgn", "enc"]
_SUFFIX: dict[str, str] = {"plain": ".cnf.xml", "sgn": ".cnf.xml.sgn", "enc": ".cnf.xml.enc.sgn"}
_DEVICE_PREFIXES = ("SEP", "ATA")
_MAC_RE = re.compile(r"[0-9A-F]{12}")
_NAME_RE = re.compile(r"(SEP|ATA)([0-9A-Za-z]*)(\.cnf\.xml(?:\.enc\.sgn|\.sgn)?)")
# Characters XML 1.0 cannot carry in text, plus CR (normalised to LF by every parser).
_BAD_TEXT_RE = re.compile("[\x00-\x08\x0b-\x0d\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")

_KNOWN = frozenset({
    "deviceName", "fullConfig", "encrConfig", "certHash", "capfAuthMode", "capfList", "TVS",
    "loadInformation", "deviceSecurityMode", "transportLayerProtocol", "ipAddressMode",
    "networkLocale", "dialTemplate",
})
#: A static file name the phone may request (no path, no leading dot; our convention).
_STATIC_NAME_RE = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,127}")
#: The locale's tone file, requested by its bare name (spec §C.6 row 6).
LOCALE_TONES_FILE = "g3-tones.xml"


# --------------------------------------------------------------------------- names (spec §C.2)
def validate_mac(mac: str, *, error: type[DecodeError] | type[EncodeError] = EncodeError) -> str:
    """Return ``mac`` if it is exactly 12 upper-case hex digits, else raise ``error``."""
    if not isinstance(mac, str) or not _MAC_RE.fullmatch(mac):
        raise error(f"MAC {mac!r} is not 12 upper-case hex digits (e.g. 0011223344AA)", fmt=FMT,
                    path="mac")
    return mac


def normalise_mac(text: str) -> str:
    """Accept ``00:11:22:33:44:aa``, ``0011.2233.44aa``, ``00-11-...`` or bare hex; return upper case.

    A MAC typed by a user is refused with the notations that are accepted (not the upper-case rule of
    :func:`validate_mac`, which this function applies for them), under the field path ``mac``."""
    if not isinstance(text, str):
        raise EncodeError(f"MAC must be text, got {type(text).__name__}", path="mac")
    bare = re.sub(r"[:.\-\s]", "", text).upper()
    if not _MAC_RE.fullmatch(bare):
        raise EncodeError(f"{text!r} is not a MAC address: 12 hex digits, e.g. 001122334455, "
                          "00:11:22:33:44:55 or 0011.2233.4455", path="mac")
    return bare


def device_name_for(mac: str, *, prefix: str = "SEP") -> str:
    """``SEP`` + MAC (``ATA`` for ATA 191 devices, spec §C.2)."""
    if prefix not in _DEVICE_PREFIXES:
        raise EncodeError(f"device prefix {prefix!r} is not one of {_DEVICE_PREFIXES}", fmt=FMT,
                          path="prefix")
    return prefix + validate_mac(mac)


def config_file_name(mac: str, kind: ConfigKind = "plain", *, prefix: str = "SEP") -> str:
    """``SEP<MAC>.cnf.xml`` (plain), ``.cnf.xml.sgn`` (sgn) or ``.cnf.xml.enc.sgn`` (enc)."""
    if kind not in _SUFFIX:
        raise EncodeError(f"config kind {kind!r} is not plain, sgn or enc", fmt=FMT, path="kind")
    return device_name_for(mac, prefix=prefix) + _SUFFIX[kind]


def default_config_name(kind: Literal["plain", "sgn"] = "plain") -> str:
    """``XmlDefault.cnf.xml`` (or ``.sgn``), the auto-registration default config (spec §C.2, §G.10)."""
    if kind not in ("plain", "sgn"):
        raise EncodeError(f"default config kind {kind!r} is not plain or sgn", fmt=FMT, path="kind")
    return DEFAULT_CONFIG_NAME + (".sgn" if kind == "sgn" else "")


@dataclass(frozen=True, kw_only=True)
class ConfigFileName:
    """A parsed device config file name: prefix (SEP/ATA), MAC and kind (plain/sgn/enc)."""

    prefix: str
    mac: str
    kind: ConfigKind

    @property
    def device_name(self) -> str:
        return self.prefix + self.mac

    def __str__(self) -> str:
        return self.device_name + _SUFFIX[self.kind]


def parse_config_file_name(name: str) -> ConfigFileName:
    """Split ``SEP<MAC>.cnf.xml[.sgn|.enc.sgn]``; anything else (bad MAC included) is a DecodeError."""
    m = _NAME_RE.fullmatch(name) if isinstance(name, str) else None
    if m is None:
        raise DecodeError(f"{name!r} is not SEP<MAC>.cnf.xml[.sgn|.enc.sgn]", fmt=FMT, path="filename")
    mac = validate_mac(m.group(2), error=DecodeError)
    kind: ConfigKind = "enc" if m.group(3).endswith(".enc.sgn") else (
        "sgn" if m.group(3).endswith(".sgn") else "plain")
    return ConfigFileName(prefix=m.group(1), mac=mac, kind=kind)


# --------------------------------------------------------------------------- model
def _check_text(value: object, path: str, *, allow_empty: bool = True) -> None:
    if not isinstance(value, str):
        raise EncodeError(f"expected text, got {type(value).__name__}", fmt=FMT, path=path)
    if not allow_empty and not value:
        raise EncodeError("must not be empty", fmt=FMT, path=path)
    if value != value.strip():
        raise EncodeError(f"{value!r} has surrounding whitespace", fmt=FMT, path=path)
    bad = _BAD_TEXT_RE.search(value)
    if bad:
        raise EncodeError(f"character U+{ord(bad.group()):04X} cannot be carried in XML text", fmt=FMT,
                          path=path)


def _has_space(text: str) -> bool:
    """Whether ``text`` holds a whitespace character (``str.isspace``'s: ``str.split`` splits at the same
    ones), in one call rather than one a character (issue #6: a fleet parses a config a phone)."""
    return text.split() != [text] if text else False


def _check_host(value: object, path: str) -> None:
    _check_text(value, path, allow_empty=False)
    assert isinstance(value, str)
    if _has_space(value):
        raise EncodeError(f"host {value!r} contains whitespace", fmt=FMT, path=path)


def _check_int(value: object, path: str, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise EncodeError(f"{value!r} is not an integer in {lo}..{hi}", fmt=FMT, path=path)


@dataclass(frozen=True, kw_only=True)
class Server:
    """A CAPF or TVS server: host name or address, port, priority (0 = first)."""

    host: str
    port: int
    priority: int = 0

    def __post_init__(self) -> None:
        _check_host(self.host, "server.host")
        _check_int(self.port, "server.port", 0, 65535)
        _check_int(self.priority, "server.priority", 0, 0xFFFF)


@dataclass(frozen=True, kw_only=True)
class CallManager:
    """One ``devicePool/callManagerGroup`` member (spec §H.5); ports may be absent."""

    host: str
    priority: int = 0
    sip_port: int | None = None
    secured_sip_port: int | None = None

    def __post_init__(self) -> None:
        _check_host(self.host, "callManager.processNodeName")
        _check_int(self.priority, "callManager.priority", 0, 0xFFFF)
        for name, port in (("sipPort", self.sip_port), ("securedSipPort", self.secured_sip_port)):
            if port is not None:
                _check_int(port, f"callManager.{name}", 0, 65535)


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceConfig:
    """The security-relevant content of a device config (spec §H.5) plus every other element.

    ``extra`` maps a top-level element name to the canonical XML of that whole element. A value
    that does not start with ``<name`` is taken as plain text and becomes ``<name>text</name>``.
    ``cert_hash`` ``""`` means a blank ``<certHash/>``; ``None`` means the element is absent.
    """

    device_name: str | None = None
    full_config: bool = True
    encr_config: bool = False
    cert_hash: str | None = None
    capf_auth_mode: int = 0
    capf_servers: tuple[Server, ...] = ()
    tvs_servers: tuple[Server, ...] = ()
    load_information: str | None = None
    device_security_mode: int = 1
    transport_layer_protocol: int | None = None
    ip_address_mode: int | None = None
    network_locale: str | None = None
    dial_template: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("full_config", "encr_config"):
            if not isinstance(getattr(self, name), bool):
                raise EncodeError(f"{name} must be a bool", fmt=FMT, path=name)
        for name in ("device_name", "cert_hash", "load_information", "network_locale", "dial_template"):
            value = getattr(self, name)
            if value is not None:
                _check_text(value, name, allow_empty=name != "device_name")
        _check_int(self.capf_auth_mode, "capf_auth_mode", 0, 4)
        _check_int(self.device_security_mode, "device_security_mode", 1, 3)
        for name in ("transport_layer_protocol", "ip_address_mode"):
            if getattr(self, name) is not None:
                _check_int(getattr(self, name), name, 0, 255)
        for name in ("capf_servers", "tvs_servers"):
            servers = tuple(getattr(self, name))
            if len(servers) > MAX_SERVERS:
                raise EncodeError(f"{len(servers)} servers, at most {MAX_SERVERS} allowed", fmt=FMT,
                                  path=name)
            if not all(isinstance(s, Server) for s in servers):
                raise EncodeError("entries must be Server objects", fmt=FMT, path=name)
            if name == "capf_servers" and any(s.priority != i for i, s in enumerate(servers)):
                # a CAPF list has no priority attribute: order is priority
                servers = tuple(s if s.priority == i else replace(s, priority=i)
                                for i, s in enumerate(servers))
            object.__setattr__(self, name, servers)
        if not isinstance(self.extra, Mapping):
            raise EncodeError("extra must be a mapping of element name to XML", fmt=FMT, path="extra")
        object.__setattr__(self, "extra", {k: _canonical_extra(k, v) for k, v in self.extra.items()})

    def __hash__(self) -> int:
        return hash((self.device_name, self.full_config, self.encr_config, self.cert_hash,
                     self.capf_auth_mode, self.capf_servers, self.tvs_servers, self.load_information,
                     self.device_security_mode, self.transport_layer_protocol, self.ip_address_mode,
                     self.network_locale, self.dial_template, tuple(sorted(self.extra.items()))))

    @property
    def static_files(self) -> tuple[str, ...]:
        """The static files this config makes the phone fetch (spec §C.6 row 6; see module docstring):
        the locale's ``g3-tones.xml`` when ``networkLocale`` is set, then the ``dialTemplate`` file."""
        names: list[str] = []
        if self.network_locale:
            names.append(LOCALE_TONES_FILE)
        if self.dial_template and _STATIC_NAME_RE.fullmatch(self.dial_template) \
                and self.dial_template not in names:
            names.append(self.dial_template)
        return tuple(names)

    @property
    def is_stub(self) -> bool:
        """True for a short config (``fullConfig=false``, spec §C.4)."""
        return not self.full_config

    def extra_text(self, name: str) -> str | None:
        """Text content of extra element ``name`` (stripped), or None when absent."""
        xml = self.extra.get(name)
        if xml is None:
            return None
        return "".join(_fromstring(xml.encode(), path=f"extra.{name}").itertext()).strip()


def _check_extra(name: object, value: object) -> None:
    """The name and character rules of an extra element (EncodeError naming it)."""
    path = f"extra.{name}"
    if not isinstance(name, str) or not _XML_NAME_RE.fullmatch(name):
        raise EncodeError(f"{name!r} is not a plain XML element name", fmt=FMT, path="extra")
    if name in _KNOWN or name == "device":
        raise EncodeError(f"<{name}> is a typed field of DeviceConfig, not an extra element", fmt=FMT,
                          path=path)
    if not isinstance(value, str):
        raise EncodeError(f"expected XML text, got {type(value).__name__}", fmt=FMT, path=path)
    bad = _BAD_TEXT_RE.search(value.replace("\r", "") if value.startswith("<" + name) else value)
    if bad:
        raise EncodeError(f"character U+{ord(bad.group()):04X} cannot be carried in XML", fmt=FMT,
                          path=path)


#: extra elements up to this many characters are canonicalised once per process (:func:`_canonical_extra`)
_EXTRA_MEMO_CHARS = 4096


def _canonical_extra(name: object, value: object) -> str:
    """An extra element as ET serialises it (text alone becomes ``<name>text</name>``). Short ones are
    remembered (a lab's configs all carry the same ``devicePool``: parsed once, not once a phone)."""
    if isinstance(name, str) and isinstance(value, str) and len(value) <= _EXTRA_MEMO_CHARS:
        return _canonical_extra_memo(name, value)
    return _canonical_extra_once(name, value)


@functools.lru_cache(maxsize=256)
def _canonical_extra_memo(name: str, value: str) -> str:
    return _canonical_extra_once(name, value)


def _canonical_extra_once(name: object, value: object) -> str:
    _check_extra(name, value)
    assert isinstance(name, str) and isinstance(value, str)
    path = f"extra.{name}"
    if not value.startswith("<" + name):
        el = ET.Element(name)
        el.text = value
    else:
        try:
            el = _fromstring(value.encode("utf-8"), path=path)
        except DecodeError as exc:
            raise EncodeError(f"not well-formed XML: {exc.message}", fmt=FMT, path=path) from None
        if el.tag != name:
            raise EncodeError(f"element is <{el.tag}>, expected <{name}>", fmt=FMT, path=path)
    el.tail = None
    return _xml_text(el)


def _xml_text(el: ET.Element) -> str:
    """``el`` serialised by ET with every CR as ``&#13;`` (module docstring: ET escapes CR only in
    attribute values, and a literal CR in text is read back as LF, XML 1.0 §2.11)."""
    return ET.tostring(el, encoding="unicode").replace("\r", "&#13;")


# --------------------------------------------------------------------------- parsing
_MAX_DEPTH = 64
_UNBOUND_PREFIX = 27  # expat XML_ERROR_UNBOUND_PREFIX
_ROOT_TAG_RE = re.compile(rb"<device(?=[\s/>])[^<>]{0,4096}?>")
_ATTR_PREFIX_RE = re.compile(rb"\s([A-Za-z_][A-Za-z0-9_.\-]{0,63}):[A-Za-z_][A-Za-z0-9_.\-]*\s*=")


#: an XML declaration at the start (after a UTF-8 byte-order mark): what it says of the encoding
_XML_DECL_RE = re.compile(rb"(?:\xef\xbb\xbf)?<\?xml(?P<decl>[^>]{0,256}?)\?>")
_ENCODING_RE = re.compile(rb"encoding\s*=\s*[\"']([A-Za-z0-9._-]{1,40})[\"']")
_PLAIN_ENCODINGS = frozenset({b"utf-8", b"utf8", b"us-ascii", b"ascii"})


def _cannot_hold_a_dtd(data: bytes) -> bool:
    """True when ``data`` is UTF-8 without the bytes ``<!`` (module rules): expat then reads no DTD,
    so no entity declaration and no external reference, and ET's C parser is as safe as defusedxml.
    The declaration is read only so far (a name of 40 characters, 256 in all); past that an encoding
    may pass unread, which is no gap: expat takes an encoding it does not know only when the bytes of
    XML's ASCII syntax mean themselves (``<!`` is then the bytes ``<!``), and refuses the others (EBCDIC:
    "unknown encoding"); UTF-16 needs a NUL or its byte-order mark."""
    if b"<!" in data or b"\x00" in data or data[:2] in (b"\xfe\xff", b"\xff\xfe"):
        return False
    m = _XML_DECL_RE.match(data)
    if m is None:
        return not data.lstrip().startswith(b"<?xml")  # a declaration we did not read: the slow path
    enc = _ENCODING_RE.search(m.group("decl"))
    return enc is None or enc.group(1).lower() in _PLAIN_ENCODINGS


def _defused(data: bytes) -> ET.Element:
    if _cannot_hold_a_dtd(data):
        return ET.fromstring(data)  # noqa: S314 -- no DTD possible (_cannot_hold_a_dtd, module rules)
    return _defused_fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)


def _translate(exc: Exception, path: str, data: bytes = b"") -> DecodeError:
    if isinstance(exc, DTDForbidden):
        if exc.sysid or exc.pubid:
            what = f"external DTD {exc.sysid or exc.pubid!r} refused (external references are not allowed)"
        elif b"<!ENTITY" in data:
            what = "DTD with entity declarations refused (entity expansion is not allowed)"
        else:
            what = "document type declaration (DTD) refused"
        return DecodeError(what, fmt=FMT, path=path)
    if isinstance(exc, EntitiesForbidden):
        return DecodeError(f"entity declaration {exc.name!r} refused (entity expansion is not allowed)",
                           fmt=FMT, path=path)
    if isinstance(exc, ExternalReferenceForbidden):
        return DecodeError("external reference refused", fmt=FMT, path=path)
    if isinstance(exc, ET.ParseError):
        line, col = getattr(exc, "position", (0, 0))
        what = re.sub(r": line \d+, column \d+$", "", str(exc))  # expat repeats the position we give
        return DecodeError(f"not well-formed XML at line {line} column {col}: {what}", fmt=FMT, path=path)
    return DecodeError(f"cannot parse XML: {exc}", fmt=FMT, path=path)


_PARSE_ERRORS = (ET.ParseError, ValueError, TypeError, LookupError, RecursionError)


def _check_depth(root: ET.Element, path: str, data: bytes) -> None:
    """No element deeper than :data:`_MAX_DEPTH`: nothing to walk when ``data`` has too few start tags
    (every ``<`` but those of end tags, hence at least every start tag) to nest that deep."""
    if data.count(b"<") - data.count(b"</") <= _MAX_DEPTH:
        return
    stack = [(root, 0)]
    while stack:
        el, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise DecodeError(f"elements nested deeper than {_MAX_DEPTH} levels", fmt=FMT, path=path)
        stack.extend((c, depth + 1) for c in el)


def _fromstring(data: bytes, *, path: str = "device") -> ET.Element:
    """defusedxml parse with DTDs, entities and external references all refused; depth bounded."""
    try:
        root = _defused(data)
    except _PARSE_ERRORS as exc:  # defusedxml's refusals are ValueErrors
        raise _translate(exc, path, data) from None
    _check_depth(root, path, data)
    return root


def _declare_root_prefixes(data: bytes) -> bytes | None:
    """Declare attribute prefixes that the root ``<device>`` uses but never declares (CUCM ``xsi:``)."""
    m = _ROOT_TAG_RE.search(data, 0, 8192)
    if m is None:
        return None
    tag = m.group()
    missing = sorted({p for p in _ATTR_PREFIX_RE.findall(tag)
                      if p not in (b"xml", b"xmlns") and b"xmlns:" + p + b"=" not in tag})
    if not missing:
        return None
    decl = b"".join(b' xmlns:' + p + b'="urn:phoneemu:undeclared:' + p + b'"' for p in missing)
    at = m.start() + len(b"<device")
    return data[:at] + decl + data[at:]


def _parse_root(data: bytes) -> ET.Element:
    try:
        root = _defused(data)
    except ET.ParseError as exc:
        patched = _declare_root_prefixes(data) if getattr(exc, "code", None) == _UNBOUND_PREFIX else None
        if patched is None:
            raise _translate(exc, "device", data) from None
        return _fromstring(patched)
    except _PARSE_ERRORS as exc:
        raise _translate(exc, "device", data) from None
    _check_depth(root, "device", data)
    return root


def _text(el: ET.Element) -> str:
    return (el.text or "").strip()


def _int(el: ET.Element, path: str, lo: int, hi: int) -> int:
    raw = _text(el)
    if not raw.isascii() or not raw.isdigit() or len(raw) > 6 or not lo <= int(raw) <= hi:
        raise DecodeError(f"{raw[:40]!r} is not an integer in {lo}..{hi}", fmt=FMT, path=path)
    return int(raw)


def _bool(el: ET.Element, path: str) -> bool:
    raw = _text(el).lower()
    if raw not in ("true", "false"):
        raise DecodeError(f"{_text(el)[:40]!r} is not true or false", fmt=FMT, path=path)
    return raw == "true"


def _str(el: ET.Element, path: str) -> str:
    if len(el):
        raise DecodeError("expected text, found child elements", fmt=FMT, path=path)
    value = _text(el)
    bad = _BAD_TEXT_RE.search(value)
    if bad:
        raise DecodeError(f"character U+{ord(bad.group()):04X} in text", fmt=FMT, path=path)
    return value


def _only_child(el: ET.Element, name: str, path: str, *, required: bool = True) -> ET.Element | None:
    found = [c for c in el if c.tag == name]
    if len(found) > 1:
        raise DecodeError(f"<{name}> appears {len(found)} times", fmt=FMT, path=f"{path}.{name}")
    if not found and required:
        raise DecodeError(f"missing <{name}>", fmt=FMT, path=f"{path}.{name}")
    return found[0] if found else None


def _capf_list(el: ET.Element) -> tuple[Server, ...]:
    entries = [c for c in el if c.tag == "capf"]
    if len(entries) > MAX_SERVERS:
        raise DecodeError(f"{len(entries)} CAPF servers, at most {MAX_SERVERS}", fmt=FMT, path="capfList")
    out = []
    for i, capf in enumerate(entries):
        path = f"capfList.capf[{i}]"
        port = _only_child(capf, "phonePort", path)
        host = _only_child(capf, "processNodeName", path)
        assert port is not None and host is not None
        out.append(_server(_host(host, f"{path}.processNodeName"), _int(port, f"{path}.phonePort", 0, 65535),
                           i))
    return _server_list(tuple(out))


def _host(el: ET.Element, path: str) -> str:
    host = _str(el, path)
    if not host or _has_space(host):
        raise DecodeError(f"{host[:60]!r} is not a host name", fmt=FMT, path=path)
    return host


def _priority(member: ET.Element, index: int, path: str) -> int:
    raw = member.get("priority")
    if raw is None:
        return index
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 5 or int(raw) > 0xFFFF:
        raise DecodeError(f"priority {raw[:20]!r} is not an integer in 0..65535", fmt=FMT,
                          path=f"{path}@priority")
    return int(raw)


def _tvs_list(el: ET.Element) -> tuple[Server, ...]:
    members_el = _only_child(el, "members", "TVS", required=False)
    members = [] if members_el is None else [c for c in members_el if c.tag == "member"]
    if len(members) > MAX_SERVERS:
        raise DecodeError(f"{len(members)} TVS servers, at most {MAX_SERVERS}", fmt=FMT, path="TVS.members")
    out = []
    for i, member in enumerate(members):
        path = f"TVS.members.member[{i}]"
        port = _only_child(member, "port", path)
        host = _only_child(member, "address", path)
        assert port is not None and host is not None
        out.append(_server(_host(host, f"{path}.address"), _int(port, f"{path}.port", 0, 65535),
                           _priority(member, i, path)))
    return _server_list(tuple(out))


#: the longest host name (characters) parses share: a DNS name has at most 253. A longer one (a fuzzer's,
#: a hostile cluster's: up to the 256 KiB config limit) is its config's own, so the servers remembered
#: stay small (1,024 of up to 256 KiB each were kept otherwise)
_SHARED_HOST_MAX = 255


def _server(host: str, port: int, priority: int) -> Server:
    """The :class:`Server` of these values: the shared one for a host of at most :data:`_SHARED_HOST_MAX`
    characters (module docstring), else a server of the config's own."""
    if len(host) > _SHARED_HOST_MAX:
        return Server(host=host, port=port, priority=priority)
    return _shared_server(host, port, priority)


def _server_list(servers: tuple[Server, ...]) -> tuple[Server, ...]:
    """The shared tuple equal to ``servers`` when each host is one parses share (:func:`_server`), else
    ``servers`` itself."""
    if any(len(s.host) > _SHARED_HOST_MAX for s in servers):
        return servers
    return _shared_servers(servers)


@functools.lru_cache(maxsize=1024)
def _shared_server(host: str, port: int, priority: int) -> Server:
    """The one :class:`Server` of these values parses return (module docstring; an invalid one raises)."""
    return Server(host=host, port=port, priority=priority)


@functools.lru_cache(maxsize=256)
def _shared_servers(servers: tuple[Server, ...]) -> tuple[Server, ...]:
    """The one tuple equal to ``servers`` (at most :data:`MAX_SERVERS`) parses return (module docstring)."""
    return servers


#: the longest text (characters) parses share; at most 256 are remembered (:func:`_shared_text`)
_SHARED_TEXT_MAX = 4 * 1024


def _shared_text(text: str) -> str:
    """The one string equal to ``text`` parses return, for a text of at most :data:`_SHARED_TEXT_MAX`
    characters (module docstring); a longer one is its config's own. A bounded memo, not ``sys.intern``:
    CPython 3.12 keeps interned strings for the life of the process, so memory grew with every distinct
    value parsed (a fuzzer's, a hostile cluster's configs)."""
    return _remembered_text(text) if len(text) <= _SHARED_TEXT_MAX else text


@functools.lru_cache(maxsize=256)
def _remembered_text(text: str) -> str:
    return text


#: the largest ``extra`` (characters) shared: what is remembered stays small whatever configs are parsed
#: (a fuzzer's, a hostile cluster's: at most 256 of 8 KiB)
_SHARED_EXTRA_MAX = 8 * 1024


def _shared_extra(items: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """The one ``extra`` mapping of these elements, in this order, parses return (module docstring); a
    large one is its own."""
    if sum(len(k) + len(v) for k, v in items) > _SHARED_EXTRA_MAX:
        return dict(items)
    return _remembered_extra(items)


@functools.lru_cache(maxsize=256)
def _remembered_extra(items: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return dict(items)


#: extra elements serialised, by their tree's shape (:func:`_extra_xml`): at most this many remembered
_SERIALISED_MAX_ITEMS = 256
#: and at most this many elements in their trees, all together: a key holds a tuple an element (about 100
#: bytes), so 256 trees of 800 tiny elements each (``<a/>`` is 5 characters of a 4 KiB text) were 20 MB
_SERIALISED_MAX_ELEMENTS = 8192
_SERIALISED: dict[tuple[tuple[object, ...], ...], str] = {}
_SERIALISED_ELEMENTS = [0]  # elements of the trees remembered in _SERIALISED (the lengths of its keys)


def _shape(el: ET.Element) -> tuple[tuple[object, ...], ...]:
    """What ET's serialisation of ``el`` depends on: every element's tag, text, tail, number of children
    and attributes (in order), in document order (the child counts give the nesting)."""
    return tuple([(e.tag, e.text, e.tail, len(e), tuple(e.attrib.items()) if e.attrib else ())
                  for e in el.iter()])


def _extra_xml(tag: str, el: ET.Element) -> str:
    """The canonical XML of the parsed extra element ``el`` (tail cleared), checked (:func:`_check_extra`).

    A fleet's configs repeat their extra elements (every phone's ``devicePool``): one seen before, element
    for element the same tree (:func:`_shape`), gives the text remembered for it, not ET's serialisation
    again (issue #6: ``ET.tostring`` was about a third of a config's parse). Remembered: at most
    :data:`_SERIALISED_MAX_ITEMS` texts of at most :data:`_EXTRA_MEMO_CHARS` characters, without
    namespaces (their prefixes come from ET's process-wide map), so the memory kept stays small."""
    key = _shape(el)
    xml = _SERIALISED.get(key)
    if xml is not None:
        return xml
    xml = _xml_text(el)
    _check_extra(tag, xml)
    xml = _shared_text(xml)
    if len(xml) <= _EXTRA_MEMO_CHARS and "xmlns" not in xml:
        _remember_serialised(key, xml)
    return xml


def _remember_serialised(key: tuple[tuple[object, ...], ...], xml: str) -> None:
    """``xml`` remembered for ``key``; the memo emptied first when it holds :data:`_SERIALISED_MAX_ITEMS`
    texts or this tree would take its trees past :data:`_SERIALISED_MAX_ELEMENTS` elements (threads may
    race on the count: it is then off by a tree or two, never unbounded, as each emptying resets it)."""
    if (len(_SERIALISED) >= _SERIALISED_MAX_ITEMS
            or _SERIALISED_ELEMENTS[0] + len(key) > _SERIALISED_MAX_ELEMENTS):
        _SERIALISED.clear()
        _SERIALISED_ELEMENTS[0] = 0
    _SERIALISED[key] = xml
    _SERIALISED_ELEMENTS[0] += len(key)


#: Successful parses by their exact bytes: phones holding the same config share one parse (module docstring)
_PARSED: Memo[DeviceConfig] = Memo(max_items=64, max_bytes=512 << 10)


def parse(data: bytes, *, limit: int = CONFIG_LIMIT) -> DeviceConfig:
    """Parse a device config; malformed or hostile XML is a DecodeError, oversized a SizeLimitError.
    Equal bytes parsed before give the same (immutable) config (module docstring)."""
    remembered = type(data) is bytes and len(data) <= limit
    if remembered:
        hit = _PARSED.get(data)
        if hit is not None:
            return hit
    try:
        cfg = _parse(data, limit)
    except EncodeError as exc:  # a value the model cannot hold is malformed input here
        raise DecodeError(exc.message, fmt=FMT, path=exc.path) from None
    if remembered:
        _PARSED.put(data, cfg)
    return cfg


def _parse(data: bytes, limit: int) -> DeviceConfig:
    raw = as_bytes(data, fmt=FMT, limit=limit, too_large=lambda size: SizeLimitError(
        f"{size} bytes exceeds the {limit}-byte config limit", fmt=FMT))  # a view by its bytes, not items
    root = _parse_root(raw)
    if root.tag != "device":
        raise DecodeError(f"root element is <{root.tag}>, expected <device>", fmt=FMT, path="device")
    seen: set[str] = set()
    values: dict[str, object] = {}
    extra: dict[str, str] = {}
    for child in root:
        tag = child.tag
        if not isinstance(tag, str) or not _XML_NAME_RE.fullmatch(tag):
            raise DecodeError(f"unsupported element name {str(tag)[:60]!r}", fmt=FMT, path="device")
        if tag in seen:
            raise DecodeError(f"<{tag}> appears more than once", fmt=FMT, path=f"device.{tag}")
        seen.add(tag)
        path = f"device.{tag}"
        if tag == "fullConfig":
            values["full_config"] = _bool(child, path)
        elif tag == "encrConfig":
            values["encr_config"] = _bool(child, path)
        elif tag == "certHash":
            values["cert_hash"] = _str(child, path)
        elif tag == "deviceName":
            values["device_name"] = _str(child, path)
        elif tag == "loadInformation":
            values["load_information"] = _shared_text(_str(child, path))
        elif tag == "networkLocale":
            values["network_locale"] = _shared_text(_str(child, path))
        elif tag == "dialTemplate":
            values["dial_template"] = _shared_text(_str(child, path))
        elif tag == "capfAuthMode":
            values["capf_auth_mode"] = _int(child, path, 0, 4)
        elif tag == "deviceSecurityMode":
            values["device_security_mode"] = _int(child, path, 1, 3)
        elif tag == "transportLayerProtocol":
            values["transport_layer_protocol"] = _int(child, path, 0, 255)
        elif tag == "ipAddressMode":
            values["ip_address_mode"] = _int(child, path, 0, 255)
        elif tag == "capfList":
            values["capf_servers"] = _capf_list(child)
        elif tag == "TVS":
            values["tvs_servers"] = _tvs_list(child)
        else:
            child.tail = None
            extra[tag] = _extra_xml(tag, child)
    cfg = DeviceConfig(**values)  # type: ignore[arg-type]
    # ET's serialisation of an element it parsed is already canonical (what _canonical_extra would
    # return after parsing it again): set directly, checked above, not parsed a second time
    object.__setattr__(cfg, "extra", _shared_extra(tuple(extra.items())))
    return cfg


# --------------------------------------------------------------------------- building
def _sub(parent: ET.Element, tag: str, text: str) -> ET.Element:
    el = ET.SubElement(parent, tag)
    el.text = text
    return el


def build(cfg: DeviceConfig) -> bytes:
    """UTF-8 XML with declaration; element order: typed fields, extras, then the security block."""
    if not isinstance(cfg, DeviceConfig):
        raise EncodeError(f"expected DeviceConfig, got {type(cfg).__name__}", fmt=FMT)
    root = ET.Element("device")
    _sub(root, "fullConfig", "true" if cfg.full_config else "false")
    if cfg.device_name is not None:
        _sub(root, "deviceName", cfg.device_name)
    if cfg.ip_address_mode is not None:
        _sub(root, "ipAddressMode", str(cfg.ip_address_mode))
    if cfg.load_information is not None:
        _sub(root, "loadInformation", cfg.load_information)
    if cfg.device_security_mode != 1:
        _sub(root, "deviceSecurityMode", str(cfg.device_security_mode))
    if cfg.transport_layer_protocol is not None:
        _sub(root, "transportLayerProtocol", str(cfg.transport_layer_protocol))
    if cfg.network_locale is not None:
        _sub(root, "networkLocale", cfg.network_locale)
    if cfg.dial_template is not None:
        _sub(root, "dialTemplate", cfg.dial_template)
    for name, xml in cfg.extra.items():
        root.append(_fromstring(xml.encode("utf-8"), path=f"extra.{name}"))
    if cfg.tvs_servers:
        tvs = ET.SubElement(root, "TVS")
        members = ET.SubElement(tvs, "members")
        for s in cfg.tvs_servers:
            member = ET.SubElement(members, "member", priority=str(s.priority))
            _sub(member, "port", str(s.port))
            _sub(member, "address", s.host)
        ET.indent(tvs, level=1)
    _sub(root, "capfAuthMode", str(cfg.capf_auth_mode))
    if cfg.capf_servers:
        capf_list = ET.SubElement(root, "capfList")
        for s in cfg.capf_servers:
            capf = ET.SubElement(capf_list, "capf")
            _sub(capf, "phonePort", str(s.port))
            _sub(capf, "processNodeName", s.host)
        ET.indent(capf_list, level=1)
    if cfg.cert_hash is not None:
        _sub(root, "certHash", cfg.cert_hash)
    _sub(root, "encrConfig", "true" if cfg.encr_config else "false")
    root.text = "\n  "
    for child in root:
        child.tail = "\n  "
    root[-1].tail = "\n"
    return (_DECLARATION + _xml_text(root) + "\n").encode("utf-8")


def stub_of(cfg: DeviceConfig, cert_hash: str) -> DeviceConfig:
    """The short config of spec §C.4 that goes with ``SEP<MAC>.cnf.xml.enc.sgn``.

    ``cert_hash`` is the lower-case hex MD5 of the phone certificate used for wrapping.
    """
    return DeviceConfig(
        full_config=False,
        encr_config=True,
        cert_hash=cert_hash,
        ip_address_mode=cfg.ip_address_mode,
        load_information=cfg.load_information,
        capf_auth_mode=cfg.capf_auth_mode,
        capf_servers=cfg.capf_servers,
    )


def stub_for_certificate(cfg: DeviceConfig, phone_cert: x509.Certificate) -> DeviceConfig:
    """:func:`stub_of` with ``certHash`` = lower-case hex MD5 of the phone's LSC/MIC (spec §C.4)."""
    return stub_of(cfg, certs.fingerprint(phone_cert, "md5"))


# --------------------------------------------------------------------------- call managers (§H.5)
def call_managers(cfg: DeviceConfig) -> tuple[CallManager, ...]:
    """The ``devicePool/callManagerGroup/members`` list kept in ``cfg.extra["devicePool"]``.

    A malformed list is a DecodeError naming the element.
    """
    try:
        return _call_managers(cfg)
    except EncodeError as exc:
        raise DecodeError(exc.message, fmt=FMT, path=exc.path) from None


def _call_managers(cfg: DeviceConfig) -> tuple[CallManager, ...]:
    xml = cfg.extra.get("devicePool")
    if xml is None:
        return ()
    pool = _fromstring(xml.encode("utf-8"), path="devicePool")
    group = _only_child(pool, "callManagerGroup", "devicePool", required=False)
    members_el = None if group is None else _only_child(group, "members", "devicePool.callManagerGroup",
                                                         required=False)
    out = []
    members = [] if members_el is None else [m for m in members_el if m.tag == "member"]
    for i, member in enumerate(members):
        path = f"devicePool.callManagerGroup.members.member[{i}]"
        cm = _only_child(member, "callManager", path)
        assert cm is not None
        name = _only_child(cm, "processNodeName", f"{path}.callManager")
        assert name is not None
        ports = _only_child(cm, "ports", f"{path}.callManager", required=False)
        sip = secured = None
        if ports is not None:
            p = _only_child(ports, "sipPort", f"{path}.callManager.ports", required=False)
            sip = None if p is None else _int(p, f"{path}.callManager.ports.sipPort", 0, 65535)
            p = _only_child(ports, "securedSipPort", f"{path}.callManager.ports", required=False)
            secured = None if p is None else _int(p, f"{path}.callManager.ports.securedSipPort", 0, 65535)
        out.append(CallManager(host=_host(name, f"{path}.callManager.processNodeName"),
                               priority=_priority(member, i, path), sip_port=sip, secured_sip_port=secured))
    return tuple(out)


def _first_line(cfg: DeviceConfig) -> ET.Element | None:
    """The first ``line`` of the config's SIP lines: a top-level ``sipLines`` (as the lab writes it), else
    ``sipProfile/sipLines`` (the layout of CUCM's SIP phone configs as commonly published; both are our
    convention, spec §G.13 names no element). A malformed list is a DecodeError naming the element."""
    xml = cfg.extra.get("sipLines")
    if xml is not None:
        lines: ET.Element | None = _fromstring(xml.encode("utf-8"), path="sipLines")
    else:
        xml = cfg.extra.get("sipProfile")
        if xml is None:
            return None
        profile = _fromstring(xml.encode("utf-8"), path="sipProfile")
        lines = _only_child(profile, "sipLines", "sipProfile", required=False)
    return None if lines is None else next((c for c in lines if c.tag == "line"), None)  # line 1 of any


def digest_credentials(cfg: DeviceConfig) -> tuple[str, str] | None:
    """The SIP digest user and password of the first line (``line/authName``, ``authPassword``; where
    the line is: :func:`_first_line`; spec §G.13), None when the config carries none ("Exclude Digest
    Credential in Configuration File"). A malformed list is a DecodeError naming the element."""
    line = _first_line(cfg)
    if line is None:
        return None
    name = _only_child(line, "authName", "sipLines.line", required=False)
    if name is None:
        return None
    password = _only_child(line, "authPassword", "sipLines.line", required=False)
    return (_str(name, "sipLines.line.authName"),
            "" if password is None else _str(password, "sipLines.line.authPassword"))


def secure_directory_url(cfg: DeviceConfig) -> str | None:
    """The config's ``secureDirectoryURL`` (CUCM's "Secured Directory URL" enterprise parameter, which the
    seed's workaround sets to http://; our element name for it), None when it has none. A malformed
    element is a DecodeError naming it."""
    xml = cfg.extra.get("secureDirectoryURL")
    if xml is None:
        return None
    return _str(_fromstring(xml.encode("utf-8"), path="secureDirectoryURL"), "secureDirectoryURL").strip()


def line_number(cfg: DeviceConfig) -> str | None:
    """The first line's directory number (``line/name``, where the line is: :func:`_first_line`), None
    when it has none (the lab's lines have none). A malformed list is a DecodeError naming the element."""
    line = _first_line(cfg)
    name = None if line is None else _only_child(line, "name", "sipLines.line", required=False)
    return None if name is None else _str(name, "sipLines.line.name") or None


def device_pool_xml(managers: tuple[CallManager, ...] | list[CallManager]) -> str:
    """A ``<devicePool>`` element listing ``managers``, for ``DeviceConfig.extra["devicePool"]``."""
    pool = ET.Element("devicePool")
    group = ET.SubElement(pool, "callManagerGroup")
    members = ET.SubElement(group, "members")
    for cm in managers:
        if not isinstance(cm, CallManager):
            raise EncodeError("entries must be CallManager objects", fmt=FMT, path="devicePool")
        member = ET.SubElement(members, "member", priority=str(cm.priority))
        node = ET.SubElement(member, "callManager")
        ports = ET.SubElement(node, "ports")
        if cm.sip_port is not None:
            _sub(ports, "sipPort", str(cm.sip_port))
        if cm.secured_sip_port is not None:
            _sub(ports, "securedSipPort", str(cm.secured_sip_port))
        _sub(node, "processNodeName", cm.host)
    ET.indent(pool, level=1)
    pool.tail = None
    return ET.tostring(pool, encoding="unicode")
