"""SDP offer/answer of one audio stream with SDES keys, sans-I/O (spec §G.14; RFC 4566, RFC 3264, RFC 4568).

What an emulated phone and the lab's media resources put in an INVITE and its answer: one ``m=audio``
stream, its address, payload types, direction and the SRTP keys the phone generated itself (SDES
``a=crypto``, sent only over TLS signalling, spec §G.14).

Rules:

* Bounded: at most :data:`MAX_SDP` bytes, :data:`MAX_LINES` lines of at most :data:`MAX_LINE` characters,
  :data:`MAX_CRYPTO` crypto attributes in the stream.
* A description is UTF-8 lines ``<letter>=<value>`` ended by CRLF (LF alone is accepted), ``v=0`` first,
  ``o=`` and ``s=`` once, at least one ``t=`` (RFC 4566 §5). A control character, an empty line, a type
  letter RFC 4566 does not define (§5: such a description is ignored whole) or a session-only line in
  a media section is a :class:`~phoneemu.errors.DecodeError` naming the 1-based ``line`` and the field
  (``path`` ``"v="``, ``"c="``, ``"a=crypto"``...); nothing else escapes. Spaces and tabs ending an
  attribute line (the grammar has none, but ``a=sendrecv `` is common) are dropped — not on an
  ``a=crypto`` line, whose keys are read exactly as written (a space there is still an error).
* The first ``m=audio`` section is the stream; other media sections (video, a second audio) are
  skipped. Its address is the media-level ``c=``, else the session-level one (RFC 4566 §5.7): an IP
  literal of the type the line names; a host name or no ``c=`` at all is an error. A multicast address
  carries ``/<ttl>`` (IPv4: required, 0..255) and an optional ``/<number of addresses>`` (at least 1, the
  last of them still multicast); an IPv6 one only ``/<number of addresses>`` (no TTL); a unicast one
  neither (RFC 4566 §5.7, RFC 8866 §5.7). Port 0 is a
  rejected stream (RFC 3264 §6); formats are RTP payload types 0..127; the profile is kept as written
  (``RTP/AVP``, ``RTP/SAVP``, ``UDP/TLS/RTP/SAVP``...: the caller decides).
* Direction ``a=sendrecv|sendonly|recvonly|inactive``: media level over session level, ``sendrecv``
  when absent, at most one per level (RFC 3264 §5.1).
* ``a=crypto:<tag> <suite> inline:<key||salt>[|lifetime][|MKI:length] [session-params]`` (RFC 4568
  §9.1) is media level only (§9); tags 1..999999999 unique in the stream (§5.1); of several key-params
  the first is kept. Any suite token is kept: the answerer skips those it does not support (§7.1.2).
* Which offered line an answerer takes is the §G.14 table's (:func:`phoneemu.protocols.media.pick_offered`):
  phones prefer ``_80`` to ``_32`` and do not offer the AEAD GCM suites CUCM knows.
* Ours (not in the spec): :func:`build_sdp` writes ``v o s c t m``, ``a=rtpmap:0 PCMU/8000`` when 0 is
  offered, ``a=ptime:20``, the crypto attributes in order, then the direction; the address goes in
  ``o=`` and in a session-level ``c=`` (with its TTL and, when more than one, the number of addresses).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import TypeGuard

from phoneemu.errors import DecodeError, EncodeError, SizeLimitError
from phoneemu.wire import as_bytes

__all__ = ["DIRECTIONS", "FMT", "MAX_CRYPTO", "MAX_LINE", "MAX_LINES", "MAX_SDP",
           "AudioOffer", "Crypto", "build_sdp", "parse_sdp"]

FMT = "sdp"
MAX_SDP = 4096
MAX_LINES = 64
MAX_LINE = 512
MAX_CRYPTO = 8
#: what a SIP phone offers, most preferred first (spec §G.14: 80 over 32 when both)
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

_MAX_TAG = 999_999_999
_MAX_ID = 10**20  # sess-id / sess-version: at most 20 digits
_LETTERS = frozenset("vosiuepcbtrzkam")  # RFC 4566 §5
_SESSION_ONLY = frozenset("vosuetrz")
_ONCE = ("o", "s")
_TYPE_RE = re.compile(r"[a-z]=")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TOKEN = r"[\x21\x23-\x27\x2a\x2b\x2d\x2e\x30-\x39\x41-\x5a\x5e-\x7e]+"  # RFC 4566 §9 token
_TOKEN_RE = re.compile(_TOKEN)
_PROFILE_RE = re.compile(rf"{_TOKEN}(?:/{_TOKEN})*")
_DIGITS_RE = re.compile(r"[0-9]{1,20}")
_PORT_RE = re.compile(r"[0-9]{1,5}")
#: RFC 4566 §9 ``ttl = (POS-DIGIT *2DIGIT) / "0"``, ``integer = POS-DIGIT *DIGIT`` (ours: at most 10 digits)
_TTL_RE = re.compile(r"0|[1-9][0-9]{0,2}")
_COUNT_RE = re.compile(r"[1-9][0-9]{0,9}")
_FORMAT_RE = re.compile(r"[0-9]{1,3}")
_SUITE_RE = re.compile(r"[A-Za-z0-9_]+")
_KEY_RE = re.compile(r"[A-Za-z0-9+/=]+")
_LIFETIME_RE = re.compile(r"(?:2\^)?[0-9]{1,20}")
_MKI_RE = re.compile(r"([0-9]{1,10}):([0-9]{1,3})")
_PARAM_RE = re.compile(r"[\x21-\x7e]+")
_CRYPTO_RE = re.compile(r"([0-9]{1,9}) +([A-Za-z0-9_]+) +([^ ]+)((?: +[\x21-\x7e]+)*)")
#: ``inline:<key||salt>[|lifetime][|mki:length]``; a lone ``|`` part is the MKI when it has a colon
_KEY_PARAM_RE = re.compile(r"inline:([A-Za-z0-9+/=]+)"
                           r"(?:\|((?:2\^)?[0-9]{1,20}))?(?:\|([0-9]{1,10}:[0-9]{1,3}))?")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, kw_only=True, slots=True)
class Crypto:
    """One ``a=crypto`` attribute (RFC 4568 §9.1): ``key_params`` is the base64 key||salt of the first
    ``inline:`` key-param, ``lifetime`` (``2^31`` or ``1024``) and ``mki`` (``1:4``) its optional parts."""

    tag: int
    suite: str
    key_params: str
    lifetime: str = ""
    mki: str = ""
    session_params: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _is_int(self.tag) or not 1 <= self.tag <= _MAX_TAG:
            raise EncodeError(f"crypto tag {self.tag!r} is not 1..{_MAX_TAG}", fmt=FMT, path="crypto.tag")
        _check(_SUITE_RE, self.suite, "crypto.suite", "a suite token (letters, digits, _)")
        _check(_KEY_RE, self.key_params, "crypto.key_params", "base64 text")
        if self.lifetime:
            _check(_LIFETIME_RE, self.lifetime, "crypto.lifetime", "[2^]digits")
        if self.mki:
            _check(_MKI_RE, self.mki, "crypto.mki", "value:length")
            if not 1 <= int(self.mki.partition(":")[2]) <= 128:
                raise EncodeError(f"MKI length of {self.mki!r} is not 1..128", fmt=FMT, path="crypto.mki")
        if not isinstance(self.session_params, tuple):
            raise EncodeError("session_params is not a tuple", fmt=FMT, path="crypto.session_params")
        for param in self.session_params:
            _check(_PARAM_RE, param, "crypto.session_params", "visible ASCII without spaces")


@dataclass(frozen=True, kw_only=True, slots=True)
class AudioOffer:
    """The audio stream of an offer or an answer: where to send RTP (``address``, ``port``; port 0 is a
    rejected stream), ``profile``, payload types, SDES keys in order, ``o=`` fields and direction."""

    address: str
    port: int
    profile: str
    formats: tuple[int, ...]
    crypto: tuple[Crypto, ...] = ()
    session_id: int = 0
    version: int = 0
    origin_user: str = "-"
    direction: str = "sendrecv"
    #: a multicast ``address``'s TTL: required with an IPv4 one (RFC 4566 §5.7), None otherwise
    ttl: int | None = None
    #: how many multicast addresses from ``address`` on (hierarchical or layered encoding; 1: just it)
    address_count: int = 1

    def __post_init__(self) -> None:
        ip = _ip(self.address) if isinstance(self.address, str) else None
        if ip is None:
            raise EncodeError(f"address {self.address!r} is not an IPv4 or IPv6 literal", fmt=FMT,
                              path="address")
        problem = _multicast_problem(ip, self.ttl, self.address_count)
        if problem is not None:
            raise EncodeError(problem, fmt=FMT, path=problem.partition(" ")[0])
        if not _is_int(self.port) or not 0 <= self.port <= 0xFFFF:
            raise EncodeError(f"port {self.port!r} is not 0..65535", fmt=FMT, path="port")
        _check(_PROFILE_RE, self.profile, "profile", "token[/token...]")
        if not isinstance(self.formats, tuple) or not self.formats:
            raise EncodeError("formats must be a non-empty tuple (RFC 4566 §5.14)", fmt=FMT, path="formats")
        for pt in self.formats:
            if not _is_int(pt) or not 0 <= pt <= 127:
                raise EncodeError(f"payload type {pt!r} is not 0..127", fmt=FMT, path="formats")
        if not isinstance(self.crypto, tuple) or not all(isinstance(c, Crypto) for c in self.crypto):
            raise EncodeError("crypto must be a tuple of Crypto", fmt=FMT, path="crypto")
        if len(self.crypto) > MAX_CRYPTO:
            raise EncodeError(f"{len(self.crypto)} crypto attributes exceed {MAX_CRYPTO}", fmt=FMT,
                              path="crypto")
        tags = [c.tag for c in self.crypto]
        if len(set(tags)) != len(tags):
            raise EncodeError(f"crypto tags {tags} are not unique (RFC 4568 §5.1)", fmt=FMT, path="crypto")
        for name in ("session_id", "version"):
            value = getattr(self, name)
            if not _is_int(value) or not 0 <= value < _MAX_ID:
                raise EncodeError(f"{name} {value!r} is not 0..10^20-1", fmt=FMT, path=name)
        if (not isinstance(self.origin_user, str) or not self.origin_user or " " in self.origin_user
                or _CONTROL_RE.search(self.origin_user)):
            raise EncodeError(f"origin user {self.origin_user!r} is not a non-empty string without spaces"
                              " or control characters", fmt=FMT, path="origin_user")
        if self.direction not in DIRECTIONS:
            raise EncodeError(f"direction {self.direction!r} is not one of {', '.join(DIRECTIONS)}",
                              fmt=FMT, path="direction")


def _check(pattern: re.Pattern[str], value: object, path: str, expected: str) -> None:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise EncodeError(f"{str(value)[:40]!r} is not {expected}", fmt=FMT, path=path)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if "%" in text:  # an IPv6 zone is local to the host that wrote it
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _multicast_problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, ttl: object,
                       count: object) -> str | None:
    """What is wrong with a connection address's TTL and number of addresses (RFC 4566 §5.7), None when
    nothing: the text starts with the field it is about (``ttl`` or ``address_count``)."""
    if ttl is not None and (not _is_int(ttl) or not 0 <= ttl <= 255):
        return f"ttl {ttl!r} is not 0..255"
    if not _is_int(count) or count < 1:
        return f"address_count {count!r} is not at least 1"
    if not ip.is_multicast:
        if ttl is not None or count != 1:
            return f"{'ttl' if ttl is not None else 'address_count'} given for {ip}, not a multicast address"
        return None
    if ip.version == 6 and ttl is not None:
        return f"ttl given for the IPv6 address {ip}: IPv6 multicast carries none (RFC 4566 §5.7)"
    if ip.version == 4 and ttl is None:
        return f"ttl missing for the IPv4 multicast address {ip}: c= requires one (RFC 4566 §5.7)"
    try:
        last = ip + (count - 1)
    except (ValueError, OverflowError):
        last = None
    if last is None or not last.is_multicast:
        return f"address_count {count} from {ip} runs past the multicast addresses"
    return None


def _addrtype(address: str) -> str:
    ip = _ip(address)
    return "IP6" if ip is not None and ip.version == 6 else "IP4"


def build_sdp(a: AudioOffer) -> bytes:
    """The description of ``a``, CRLF line ends; EncodeError when a line or the whole would be refused
    by :func:`parse_sdp` (over :data:`MAX_LINE` characters, over :data:`MAX_SDP` bytes). What else the
    parser refuses ``a`` cannot hold (an IPv4 multicast address without its TTL: ``AudioOffer.ttl``)."""
    addr = f"IN {_addrtype(a.address)} {a.address}"
    scope = "".join(f"/{n}" for n in (a.ttl, a.address_count if a.address_count != 1 else None)
                    if n is not None)
    lines = ["v=0", f"o={a.origin_user} {a.session_id} {a.version} {addr}", "s=-", f"c={addr}{scope}",
             "t=0 0",
             f"m=audio {a.port} {a.profile} {' '.join(str(pt) for pt in a.formats)}"]
    if 0 in a.formats:
        lines.append("a=rtpmap:0 PCMU/8000")
    lines.append("a=ptime:20")
    for c in a.crypto:
        key = "|".join(part for part in (c.key_params, c.lifetime, c.mki) if part)
        lines.append(" ".join((f"a=crypto:{c.tag} {c.suite} inline:{key}", *c.session_params)))
    lines.append(f"a={a.direction}")
    for number, line in enumerate(lines, start=1):
        if len(line) > MAX_LINE:
            raise EncodeError(f"line {number} of {len(line)} characters exceeds {MAX_LINE}", fmt=FMT,
                              path=line[:2])
    out = "".join(f"{line}\r\n" for line in lines).encode("utf-8")
    if len(out) > MAX_SDP:
        raise EncodeError(f"description of {len(out)} bytes exceeds {MAX_SDP}", fmt=FMT, path="sdp")
    return out


@dataclass(slots=True)
class _Level:
    """What one level (session or the audio media) said, with the line numbers of the first sayings."""

    address: str | None = None
    ttl: int | None = None
    address_count: int = 1
    c_line: int = 0
    direction: str | None = None
    direction_line: int = 0
    crypto: list[Crypto] = field(default_factory=list)


def _error(message: str, line: int, path: str) -> DecodeError:
    return DecodeError(f"{message} (line {line})", fmt=FMT, path=path, line=line)


def _lines(data: bytes) -> list[tuple[str, str]]:
    """``(letter, value)`` of each line: UTF-8, bounded (in bytes, a memoryview's too:
    :func:`phoneemu.wire.as_bytes`), no control characters, known type letters."""
    data = as_bytes(data, fmt=FMT, limit=MAX_SDP, too_large=lambda size: SizeLimitError(
        f"description of {size} bytes exceeds {MAX_SDP}", fmt=FMT, path="sdp", offset=MAX_SDP))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = data.count(b"\n", 0, exc.start) + 1
        raise DecodeError(f"not UTF-8 (line {at})", fmt=FMT, path="sdp", offset=exc.start,
                          line=at) from None
    raw = text.split("\n")
    if raw[-1] == "":
        raw.pop()  # the end of the last line
    if len(raw) > MAX_LINES:
        raise SizeLimitError(f"{len(raw)} lines exceed {MAX_LINES} (line {MAX_LINES + 1})", fmt=FMT,
                             path="sdp", line=MAX_LINES + 1)
    out: list[tuple[str, str]] = []
    for number, ended in enumerate(raw, start=1):
        line = ended.removesuffix("\r")
        if line.startswith("a=") and not line.startswith("a=crypto:"):
            line = line.rstrip(" \t")  # trailing white space on an attribute line: common (not a=crypto)
        path = line[:2] if _TYPE_RE.fullmatch(line[:2]) else "sdp"
        if len(line) > MAX_LINE:
            raise _error(f"line of {len(line)} characters exceeds {MAX_LINE}", number, path)
        bad = _CONTROL_RE.search(line)
        if bad is not None:
            raise _error(f"control character {bad.group()!r} at column {bad.start() + 1}", number, path)
        if path == "sdp":
            raise _error(f"line {line[:40]!r} is not <letter>=<value>", number, path)
        if line[0] not in _LETTERS:
            raise _error(f"type letter {line[0]!r} is not defined by RFC 4566 §5", number, path)
        out.append((line[0], line[2:]))
    return out


def parse_sdp(data: bytes) -> AudioOffer:
    """The first audio stream of a description (an offer or an answer); DecodeError naming line and field."""
    lines = _lines(data)
    if not lines or lines[0] != ("v", "0"):
        raise _error("the first line must be v=0 (RFC 4566 §5.1)", 1, "v=")
    session, audio = _Level(), _Level()
    m: tuple[int, str, tuple[int, ...]] | None = None
    m_line = 0
    origin: tuple[str, int, int] = ("-", 0, 0)
    seen: dict[str, int] = {}
    section = "session"  # then "audio" in the first m=audio, "skip" in any other media section
    for number, (letter, value) in enumerate(lines[1:], start=2):
        path = f"{letter}="
        if letter == "v":
            raise _error("second v= line", number, path)
        if letter == "m":
            if m is None and value.partition(" ")[0] == "audio":
                m, m_line, section = _parse_m(value, number), number, "audio"
            else:
                section = "skip"
            continue
        if section == "skip":
            continue
        level = session if section == "session" else audio
        if section == "audio" and letter in _SESSION_ONLY:
            raise _error(f"{path} is not allowed in a media section (RFC 4566 §5)", number, path)
        if letter in _ONCE and letter in seen:
            raise _error(f"second {path} line (first on line {seen[letter]})", number, path)
        seen.setdefault(letter, number)
        if letter == "o":
            origin = _parse_o(value, number)
        elif letter == "c":
            if level.address is not None:
                raise _error(f"second c= line at this level (first on line {level.c_line})", number, path)
            (level.address, level.ttl, level.address_count), level.c_line = _parse_c(value, number), number
        elif letter == "a":
            _parse_a(value, number, level, media=section == "audio")
    for letter in ("o", "s", "t"):
        if letter not in seen:
            raise _error(f"no {letter}= line (RFC 4566 §5)", len(lines), f"{letter}=")
    if m is None:
        raise _error("no m=audio section", len(lines), "m=")
    where = audio if audio.address is not None else session
    address = where.address
    if address is None:
        raise _error("no c= line for the audio stream, at media or session level (RFC 4566 §5.7)", m_line,
                     "c=")
    port, profile, formats = m
    user, session_id, version = origin
    try:
        return AudioOffer(address=address, port=port, profile=profile, formats=formats,
                          crypto=tuple(audio.crypto), session_id=session_id, version=version,
                          origin_user=user, direction=audio.direction or session.direction or "sendrecv",
                          ttl=where.ttl, address_count=where.address_count)
    except EncodeError as exc:  # not reached: each value was checked as it was read
        raise DecodeError(exc.message, fmt=FMT, path=exc.path or "m=", line=m_line) from None


def _fields(value: str, count: int | None, number: int, path: str, form: str) -> list[str]:
    parts = value.split(" ")
    if "" in parts or (count is not None and len(parts) != count) or len(parts) < 2:
        raise _error(f"{value[:60]!r} is not {form}", number, path)
    return parts


def _parse_o(value: str, number: int) -> tuple[str, int, int]:
    user, sess_id, sess_version, nettype, addrtype, address = _fields(
        value, 6, number, "o=", "<username> <sess-id> <sess-version> IN IP4|IP6 <address>")
    for what, digits in (("sess-id", sess_id), ("sess-version", sess_version)):
        if _DIGITS_RE.fullmatch(digits) is None:
            raise _error(f"{what} {digits[:30]!r} is not a number of at most 20 digits", number, "o=")
    if nettype != "IN" or addrtype not in ("IP4", "IP6"):
        raise _error(f"{nettype[:10]!r} {addrtype[:10]!r} is not IN IP4 or IN IP6", number, "o=")
    if _TOKEN_RE.fullmatch(address) is None and _ip(address) is None:
        raise _error(f"origin address {address[:60]!r} is neither an address nor a host name", number, "o=")
    return user, int(sess_id), int(sess_version)


def _parse_c(value: str, number: int) -> tuple[str, int | None, int]:
    """``c=``'s address, TTL and number of addresses (module docstring; RFC 4566 §5.7)."""
    nettype, addrtype, written = _fields(value, 3, number, "c=", "IN IP4|IP6 <address>[/ttl][/count]")
    if nettype != "IN" or addrtype not in ("IP4", "IP6"):
        raise _error(f"{nettype[:10]!r} {addrtype[:10]!r} is not IN IP4 or IN IP6", number, "c=")
    address, *scope = written.split("/")
    ip = _ip(address)
    if ip is None:
        raise _error(f"connection address {address[:60]!r} is not an IP literal", number, "c=")
    if addrtype != f"IP{ip.version}":
        raise _error(f"{address!r} is not an {addrtype} address", number, "c=")
    if scope and not ip.is_multicast:
        raise _error(f"{written[:60]!r}: a TTL or a number of addresses only follows a multicast address",
                     number, "c=")
    ttl: int | None = None
    if ip.version == 4 and ip.is_multicast:
        if not scope:
            raise _error(f"IPv4 multicast address {address!r} without its /TTL (RFC 4566 §5.7)", number, "c=")
        if _TTL_RE.fullmatch(scope[0]) is None or int(scope[0]) > 255:
            raise _error(f"TTL {scope[0][:20]!r} of {address!r} is not 0..255", number, "c=")
        ttl = int(scope.pop(0))
    if len(scope) > 1:
        raise _error(f"{written[:60]!r} is not <address>{'/<ttl>' if ip.version == 4 else ''}[/<count>]"
                     + (" (IPv6 multicast carries no TTL)" if ip.version == 6 else ""), number, "c=")
    count = 1
    if scope:
        if _COUNT_RE.fullmatch(scope[0]) is None:
            raise _error(f"number of addresses {scope[0][:20]!r} of {address!r} is not an integer of at "
                         "least 1", number, "c=")
        count = int(scope[0])
    problem = _multicast_problem(ip, ttl, count)
    if problem is not None:
        raise _error(problem.replace("address_count", "number of addresses", 1), number, "c=")
    return address, ttl, count


def _parse_m(value: str, number: int) -> tuple[int, str, tuple[int, ...]]:
    parts = _fields(value, None, number, "m=", "audio <port> <proto> <fmt>...")
    if len(parts) < 4:
        raise _error(f"{value[:60]!r} has no format (audio <port> <proto> <fmt>...)", number, "m=")
    port, profile, fmts = parts[1], parts[2], parts[3:]
    if _PORT_RE.fullmatch(port) is None or int(port) > 0xFFFF:
        raise _error(f"port {port[:20]!r} is not 0..65535", number, "m=")
    if _PROFILE_RE.fullmatch(profile) is None:
        raise _error(f"proto {profile[:40]!r} is not token[/token...]", number, "m=")
    for fmt in fmts:
        if _FORMAT_RE.fullmatch(fmt) is None or int(fmt) > 127:
            raise _error(f"format {fmt[:20]!r} is not an RTP payload type 0..127", number, "m=")
    return int(port), profile, tuple(int(f) for f in fmts)


def _parse_a(value: str, number: int, level: _Level, *, media: bool) -> None:
    name, colon, rest = value.partition(":")
    if _TOKEN_RE.fullmatch(name) is None:
        raise _error(f"attribute name {name[:40]!r} is not a token", number, "a=")
    if name in DIRECTIONS:
        if colon:
            raise _error(f"a={name} takes no value", number, f"a={name}")
        if level.direction is not None:
            raise _error(f"second direction attribute (a={level.direction} on line {level.direction_line}; "
                         "RFC 3264 §5.1)", number, f"a={name}")
        level.direction, level.direction_line = name, number
    elif name == "crypto":
        if not media:
            raise _error("a=crypto at session level (RFC 4568 §9: media level only)", number, "a=crypto")
        if len(level.crypto) >= MAX_CRYPTO:
            raise _error(f"more than {MAX_CRYPTO} crypto attributes", number, "a=crypto")
        crypto = _parse_crypto(rest, number)
        for other in level.crypto:
            if other.tag == crypto.tag:
                raise _error(f"crypto tag {crypto.tag} used twice (RFC 4568 §5.1)", number, "a=crypto")
        level.crypto.append(crypto)


def _parse_crypto(value: str, number: int) -> Crypto:
    found = _CRYPTO_RE.fullmatch(value)
    if found is None:
        raise _error(f"{value[:60]!r} is not <tag> <crypto-suite> <key-params> [<session-params>]"
                     " (RFC 4568 §9.1)", number, "a=crypto")
    tag, suite, key_params, params = found.groups()
    if int(tag) == 0:
        raise _error(f"tag {tag!r} is not 1..{_MAX_TAG}", number, "a=crypto")
    keys: list[re.Match[str]] = []
    for param in key_params.split(";"):
        k = _KEY_PARAM_RE.fullmatch(param)
        if k is None:
            raise _error(f"key-param {param[:60]!r} is not inline:<key||salt>[|lifetime][|mki:length]",
                         number, "a=crypto")
        if k.group(3) is not None and not 1 <= int(k.group(3).partition(":")[2]) <= 128:
            raise _error(f"MKI length in {k.group(3)!r} is not 1..128", number, "a=crypto")
        keys.append(k)
    first = keys[0]
    try:
        return Crypto(tag=int(tag), suite=suite, key_params=first.group(1), lifetime=first.group(2) or "",
                      mki=first.group(3) or "", session_params=tuple(p for p in params.split(" ") if p))
    except EncodeError as exc:  # not reached: each part was checked as it was read
        raise DecodeError(exc.message, fmt=FMT, path="a=crypto", line=number) from None
