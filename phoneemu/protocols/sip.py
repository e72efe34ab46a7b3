"""SIP REGISTER with digest authentication, sans-I/O (spec §G.13, RFC 3261, RFC 2617).

What the phone and the lab registrar say to each other when the phone registers, and the digest
arithmetic of spec §G.13: ``HA1 = MD5(username ":" realm ":" password)``, ``HA2 = MD5(method ":" uri)``,
``response = MD5(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" HA2)`` with ``qop=auth`` (RFC 2617
§3.2.2.1; without qop ``MD5(HA1 ":" nonce ":" HA2)``).

Rules:

* A message is a start line, headers and a body of ``Content-Length`` bytes (RFC 3261 §7, §18.3: over a
  stream a message without Content-Length is malformed). Bounded: a head of at most :data:`MAX_HEAD`
  bytes and :data:`MAX_HEADERS` header lines, a body of at most :data:`MAX_BODY` bytes whatever
  Content-Length claims. Header names are case-insensitive (compact forms ``v f t i m l`` are taken).
  Input is bytes-like and measured in bytes, a memoryview's too (:func:`phoneemu.wire.as_bytes`): one
  whole message longer than ``MAX_HEAD + 4 + MAX_BODY`` is a SizeLimitError before any copy (ours).
* Over a stream (:class:`SipStream`) CRLFs before a start line are skipped (RFC 3261 §7.5: keep-alives,
  RFC 5626 §4.4.1, are CRLF CRLF between messages). Its memory is bounded whatever the caller does
  (ours): ``feed`` refuses bytes (SizeLimitError, a DecodeError naming the limit) while the stream holds
  ``MAX_HEAD + 4 + MAX_BODY`` bytes or more that ``next`` has not taken — a caller that takes messages
  with ``next`` until None before it feeds again never holds that much (what is left is part of one
  message, shorter than the largest), one that feeds without taking them is stopped there (was: the
  buffer grew with every feed, 2 MB in a probe). The stream stays usable: ``next`` still takes what it
  holds.
* Bad input — no CRLF CRLF within the limit, a start line that is neither a request nor a status line
  (a control character in its Request-URI or reason phrase included), a header line without a colon
  or with a control character other than HTAB (a bare CR or LF would let a value carry a header of its
  own into what echoes it: a response, a relayed request), a Content-Length that is not a number or
  over the limit, or several giving different numbers (``5`` and ``05`` are one number, RFC 3261
  §7.3.1), a digest challenge whose parameters do not parse or carry a control character (even
  escaped: what the phone answers echoes realm and nonce, and must not carry one into its request), or
  that names a parameter twice (in any case; RFC 7235 §2.1, whose auth-params RFC 7616 uses: "MUST only
  occur once per challenge" — which realm or nonce would the answer be over? credentials alike) — is a
  :class:`~phoneemu.errors.DecodeError` naming the field and offset; nothing else escapes.
* A request the server sends the phone on its connection (:func:`answer_request`, RFC 3261 §8.2, §11.2):
  ``OPTIONS`` gets ``200`` with ``Allow``, ``Accept`` and ``Supported`` (what the phone does:
  :data:`ALLOW`, ``application/sdp``, no extension); ``ACK`` gets nothing (§17.1.1.3); a method the phone
  knows but takes at no such moment gets ``405`` with ``Allow`` (``NOTIFY``, ``SUBSCRIBE``, ``REGISTER``...),
  one it does not know ``501``; ``INVITE`` while the phone waits for an answer of its own ``486`` (ours:
  busy in its own transaction), ``BYE`` / ``CANCEL`` ``481`` (no dialog or transaction of it known there,
  §15.1.2, §9.2); a request missing Via, From, To, Call-ID or CSeq ``400`` naming it (§8.1.1: what
  every request carries).
  Every response echoes Via, From, To (with the phone's tag), Call-ID and CSeq (§8.2.6.2).
* Ours (the spec gives the digest, not the REGISTER a phone sends): the From/To user is the device name
  ``SEP<MAC>`` (the lab has no directory numbers), the Contact carries ``+sip.instance`` with the MAC
  (as Cisco phones do), Expires 3600.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from phoneemu.errors import DecodeError, SizeLimitError
from phoneemu.protocols.defaults import SIP_PORT, SIPS_PORT
from phoneemu.wire import as_bytes

__all__ = ["ALLOW", "DIGEST_ALGORITHMS", "MAX_BODY", "MAX_HEAD", "MAX_HEADERS", "REALM", "SIPS_PORT",
           "SIP_PORT", "SipMessage", "SipStream", "answer_request", "build_message", "device_mac",
           "digest_challenges", "digest_response",
           "format_digest", "message_bytes", "parse_digest", "parse_message", "pick_challenge",
           "request_user", "response_to"]

FMT = "sip"
MAX_HEAD = 8192
MAX_HEADERS = 64
MAX_BODY = 4096
_MAX_MESSAGE = MAX_HEAD + 4 + MAX_BODY  # the largest whole message: head, CRLF CRLF, body
#: CUCM's "SIP Station Realm" default (spec §G.13)
REALM = "ccmsipline"

_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length"}
#: the version is case-insensitive (RFC 3261 §7.1: "SIP/2.0" is what is sent, "sip/2.0" is read alike)
#: (a Request-URI with no control character, as the reason phrase and header values: it is logged and echoed)
_REQUEST_RE = re.compile(r"([A-Z]{1,16}) ([^\s\x00-\x1f\x7f]{1,1024}) [Ss][Ii][Pp]/2\.0")
#: (a reason phrase with no control character)
_STATUS_RE = re.compile(r"[Ss][Ii][Pp]/2\.0 ([1-6][0-9]{2}) ([^\x00-\x08\x0a-\x1f\x7f]{0,256})")
_TOKEN_RE = re.compile(r"[A-Za-z0-9!%'*+._`~-]+")
_DEVICE_RE = re.compile(r"<?sips?:(SEP[0-9A-Fa-f]{12})@", re.IGNORECASE)
#: a Cisco phone's Contact ``+sip.instance="<urn:uuid:00000000-0000-0000-0000-<MAC>>"``
_INSTANCE_RE = re.compile(r'\+sip\.instance="<urn:uuid:00000000-0000-0000-0000-([0-9A-Fa-f]{12})>"',
                          re.IGNORECASE)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # not HTAB: it is LWS
_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_-]{1,32})\s*=\s*'
                       r'("(?:[^"\\\r\n]|\\.){0,1024}"|[^\s,"]{1,1024})\s*(,|$)')


@dataclass(frozen=True, kw_only=True, slots=True)
class SipMessage:
    """A request (``method``, ``uri``) or a response (``status``, ``reason``); headers in order."""

    method: str | None = None
    uri: str | None = None
    status: int | None = None
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first header ``name`` (case-insensitive; compact forms too), None when absent."""
        want = _COMPACT.get(name.lower(), name.lower())
        for k, v in self.headers:
            if _COMPACT.get(k.lower(), k.lower()) == want:
                return v
        return None


def build_message(start: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """A message with ``Content-Length`` last among the headers (RFC 3261 §20.14)."""
    lines = [start, *(f"{k}: {v}" for k, v in headers), f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode("utf-8") + body


def message_bytes(msg: SipMessage) -> bytes:
    """``msg`` as bytes again: its start line, its headers in order (``Content-Length`` last, of its
    body) and its body."""
    if msg.method is not None:
        start = f"{msg.method} {msg.uri} SIP/2.0"
    else:
        start = f"SIP/2.0 {msg.status} {msg.reason}"
    headers = [(k, v) for k, v in msg.headers if k.lower() not in ("content-length", "l")]
    return build_message(start, headers, msg.body)


def _head_end(data: bytes) -> int:
    end = data.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
    if end < 0:
        if len(data) > MAX_HEAD:
            raise DecodeError(f"no end of the message head within {MAX_HEAD} bytes", fmt=FMT, path="head",
                              offset=MAX_HEAD)
        raise DecodeError("message head cut short (no blank line)", fmt=FMT, path="head", offset=len(data))
    return end


def parse_message(data: bytes) -> SipMessage:
    """One whole message (head and exactly its Content-Length of body); DecodeError otherwise (module
    rules: more than the largest message, a SizeLimitError)."""
    data = as_bytes(data, fmt=FMT, limit=_MAX_MESSAGE, too_large=lambda size: SizeLimitError(
        f"message of {size} bytes exceeds the {_MAX_MESSAGE}-byte limit (head {MAX_HEAD}, blank line, "
        f"body {MAX_BODY})", fmt=FMT, path="message", offset=_MAX_MESSAGE))
    end = _head_end(data)
    msg, length = _parse_head(data[:end])
    body = data[end + 4:]
    if len(body) != length:
        raise DecodeError(f"body of {len(body)} bytes, Content-Length says {length}", fmt=FMT,
                          path="Content-Length", offset=end + 4)
    return _with_body(msg, body)


def _with_body(msg: SipMessage, body: bytes) -> SipMessage:
    return SipMessage(method=msg.method, uri=msg.uri, status=msg.status, reason=msg.reason,
                      headers=msg.headers, body=bytes(body))


def _parse_head(head: bytes) -> tuple[SipMessage, int]:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("head is not UTF-8", fmt=FMT, path="head", offset=exc.start) from None
    lines = text.split("\r\n")
    start = lines[0]
    request, status = _REQUEST_RE.fullmatch(start), _STATUS_RE.fullmatch(start)
    if request is None and status is None:
        raise DecodeError(f"start line {start[:60]!r} is neither a SIP/2.0 request nor a status line",
                          fmt=FMT, path="start-line", offset=0)
    headers: list[tuple[str, str]] = []
    offset = len(start) + 2
    length_at: list[int] = []  # offsets of the Content-Length lines (their errors say where)
    for line in lines[1:]:
        control = _CONTROL_RE.search(line)
        if control is not None:
            raise DecodeError(f"control character {control.group()!r} in header line {line[:60]!r}", fmt=FMT,
                              path=f"header[{len(headers)}]", offset=offset + control.start())
        if line[:1] in (" ", "\t") and headers:  # folded continuation (RFC 3261 §7.3.1)
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}".strip())  # "Name:" CRLF " v": the value is "v"
        else:
            name, sep, value = line.partition(":")
            if not sep or not _TOKEN_RE.fullmatch(name.strip()):
                raise DecodeError(f"header line {line[:60]!r} has no name and colon", fmt=FMT,
                                  path=f"header[{len(headers)}]", offset=offset)
            headers.append((name.strip(), value.strip()))
            if _COMPACT.get(name.strip().lower(), name.strip().lower()) == "content-length":
                length_at.append(offset)
            if len(headers) > MAX_HEADERS:
                raise DecodeError(f"more than {MAX_HEADERS} headers", fmt=FMT, path="headers", offset=offset)
        offset += len(line) + 2
    msg = SipMessage(method=request.group(1) if request else None, uri=request.group(2) if request else None,
                     status=int(status.group(1)) if status else None,
                     reason=status.group(2) if status else "", headers=tuple(headers))
    values = [v for k, v in headers if _COMPACT.get(k.lower(), k.lower()) == "content-length"]
    if not values:
        raise DecodeError("no Content-Length (required over a stream, RFC 3261 §18.3)", fmt=FMT,
                          path="Content-Length", offset=len(head))
    # each one a number, all the same number, else which one frames the body? (RFC 3261 §7.3.1: one
    # Content-Length; its value is a number: "5" and "05" say the same, was: compared as text, conflicting)
    lengths = [_content_length(v, at) for v, at in zip(values, length_at, strict=True)]
    for value, length, at in zip(values, lengths, length_at, strict=True):
        if length != lengths[0]:
            raise DecodeError(f"conflicting Content-Length headers {values[0][:20]!r} and {value[:20]!r} "
                              f"({lengths[0]} and {length} bytes)", fmt=FMT, path="Content-Length", offset=at)
    return msg, lengths[0]


def _content_length(raw: str, offset: int) -> int:
    """The body length a Content-Length value ``raw`` (its line at ``offset``) gives: decimal digits, at
    most :data:`MAX_BODY`. Digits past the limit are said as such, however many (was: "is not a number"
    beyond six digits; never ``int()`` of thousands of digits, which Python refuses)."""
    if not raw.isascii() or not raw.isdigit():
        raise DecodeError(f"Content-Length {raw[:20]!r} is not a number", fmt=FMT, path="Content-Length",
                          offset=offset)
    digits = raw.lstrip("0") or "0"
    if len(digits) > len(str(MAX_BODY)) or int(digits) > MAX_BODY:
        shown = digits if len(digits) <= 20 else f"{digits[:20]}... ({len(digits)} digits)"
        raise DecodeError(f"Content-Length {shown} exceeds the {MAX_BODY}-byte limit", fmt=FMT,
                          path="Content-Length", offset=offset)
    return int(digits)


class SipStream:
    """Messages framed out of a byte stream (``feed`` then ``next``); memory bounded by the limits: less
    than the largest message plus the last bytes fed, whatever the caller (module rules)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        """Add bytes-like ``data`` (module rules); DecodeError once no head end comes within the limit, and
        SizeLimitError (nothing added) while the stream already holds the largest message's worth of
        bytes ``next`` has not taken."""
        raw = as_bytes(data, fmt=FMT)
        if raw and len(self._buf) >= _MAX_MESSAGE:
            raise SizeLimitError(
                f"{len(self._buf)} bytes not taken by next() wait in the stream: no more is taken past the "
                f"{_MAX_MESSAGE}-byte limit of one message (head {MAX_HEAD}, blank line, body {MAX_BODY})",
                fmt=FMT, path="stream")
        self._buf += raw
        if len(self._buf) > MAX_HEAD + MAX_BODY + 4 and self._buf.find(b"\r\n\r\n", 0, MAX_HEAD + 4) < 0:
            _head_end(bytes(self._buf))  # raises: no head end within the limit

    def pending(self) -> int:
        """How many bytes wait there (of a message not yet whole)."""
        return len(self._buf)

    def next(self) -> SipMessage | None:
        """The next whole message, None until one has arrived; DecodeError for a malformed one. CRLFs
        before a start line are skipped (RFC 3261 §7.5 "MUST ignore": a keep-alive, RFC 5626 §4.4.1)."""
        skip = 0
        while self._buf.startswith(b"\r\n", skip):
            skip += 2
        if skip:
            del self._buf[:skip]
        end = self._buf.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
        if end < 0:
            if len(self._buf) > MAX_HEAD:
                _head_end(bytes(self._buf))
            return None
        msg, length = _parse_head(bytes(self._buf[:end]))
        if len(self._buf) < end + 4 + length:
            return None
        body = bytes(self._buf[end + 4:end + 4 + length])
        del self._buf[:end + 4 + length]
        return _with_body(msg, body)


def response_to(msg: SipMessage, status: int, reason: str, extra: list[tuple[str, str]] | None = None,
                *, to_tag: str = "phoneemu", body: bytes = b"") -> bytes:
    """A response to request ``msg`` copying Via, From, To (with ``to_tag`` when it has none), Call-ID and
    CSeq (RFC 3261 §8.2.6.2), then ``extra`` headers, then ``body``."""
    copied = [(k, v) for k in ("Via", "From", "To", "Call-ID", "CSeq") if (v := msg.header(k)) is not None]
    copied = [(k, f"{v};tag={to_tag}" if k == "To" and ";tag=" not in v else v) for k, v in copied]
    return build_message(f"SIP/2.0 {status} {reason}", [*copied, *(extra or [])], body)


#: the methods the phone implements (it places and answers calls, and answers OPTIONS), RFC 3261 §20.5
ALLOW = "INVITE, ACK, BYE, OPTIONS"
#: methods of RFC 3261 and its extensions the phone knows but does not take from a server (405, §8.2.1)
_KNOWN_METHODS = frozenset({"REGISTER", "NOTIFY", "SUBSCRIBE", "REFER", "MESSAGE", "INFO", "UPDATE", "PRACK",
                            "PUBLISH"})
_REQUIRED = ("Via", "From", "To", "Call-ID", "CSeq")


def answer_request(msg: SipMessage, *, to_tag: str) -> tuple[int, bytes | None]:
    """The phone's answer to request ``msg`` a server sent it (module docstring): its status and bytes;
    ``(0, None)`` for an ACK (never answered). ``to_tag``: the phone's To tag where ``msg``'s To has none."""
    method = msg.method or ""
    if method == "ACK":
        return 0, None
    missing = [name for name in _REQUIRED if msg.header(name) is None]
    allow = [("Allow", ALLOW)]
    if missing:
        status, reason, extra = 400, f"Bad Request (no {', '.join(missing)})", []
    elif method == "OPTIONS":
        status, reason = 200, "OK"
        extra = [*allow, ("Accept", "application/sdp"), ("Accept-Encoding", "identity"),
                 ("Accept-Language", "en"), ("Supported", "")]
    elif method == "INVITE":
        status, reason, extra = 486, "Busy Here", allow
    elif method in ("BYE", "CANCEL"):
        status, reason, extra = 481, "Call/Transaction Does Not Exist", allow
    elif method in _KNOWN_METHODS:
        status, reason, extra = 405, "Method Not Allowed", allow
    else:
        status, reason, extra = 501, "Not Implemented", allow
    return status, response_to(msg, status, reason, [*extra, ("User-Agent", "phoneemu")], to_tag=to_tag)


def request_user(msg: SipMessage) -> str:
    """The user part of a request's URI (``moh`` of ``sip:moh@10.0.0.1``; "" when it has none)."""
    rest = (msg.uri or "").split(":", 1)[-1]
    return rest.split("@", 1)[0] if "@" in rest else ""


def device_mac(msg: SipMessage) -> str | None:
    """The MAC (upper case) of the device a request names: ``SEP<MAC>`` as the From user, else the
    Contact's ``+sip.instance`` (what a line with a directory number leaves); None when neither does."""
    found = _DEVICE_RE.search(msg.header("from") or "")
    if found is not None:
        return found.group(1)[3:].upper()
    found = _INSTANCE_RE.search(msg.header("contact") or "")
    return found.group(1).upper() if found is not None else None


_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def ascii_upper(token: str) -> str:
    """A token upper-cased in ASCII only, as RFC 2617/7616 compare ``algorithm`` and ``stale`` (case-
    insensitive tokens): ``str.upper`` would read ``md5-se`` + two U+017F (long s) as ``MD5-SESS``."""
    return token.translate(_ASCII_UPPER)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def digest_response(*, username: str, realm: str, password: str, method: str, uri: str, nonce: str,
                    nc: str = "", cnonce: str = "", qop: str = "", algorithm: str = "MD5",
                    body: bytes = b"") -> str:
    """The RFC 2617 §3.2.2.1 ``response``: MD5, or ``MD5-sess`` (HA1 over nonce and cnonce too, §3.2.2.2);
    with ``qop`` ``auth`` or ``auth-int`` (HA2 over the MD5 of ``body`` too, §3.2.2.3) when given."""
    ha1 = _md5(f"{username}:{realm}:{password}")
    if ascii_upper(algorithm) == "MD5-SESS":
        ha1 = _md5(f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        ha2 = _md5(f"{method}:{uri}:{hashlib.md5(body, usedforsecurity=False).hexdigest()}")
    else:
        ha2 = _md5(f"{method}:{uri}")
    if qop:
        return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _md5(f"{ha1}:{nonce}:{ha2}")


def parse_digest(value: str, *, field: str = "WWW-Authenticate") -> dict[str, str]:
    """The parameters of a ``Digest k=v, k="v"`` header (names lower-cased, quotes and escapes removed);
    DecodeError naming ``field`` when it is not a Digest one, a parameter does not parse, or one is given
    twice (names compared in any case; RFC 7235 §2.1: each only once per challenge); a value that is not
    text too (was: AttributeError, or bytes told "scheme b'Digest' is not Digest")."""
    if not isinstance(value, str):
        raise DecodeError(f"expected text, got {type(value).__name__}", fmt=FMT, path=field)
    scheme, rest = [*value.split(None, 1), "", ""][:2]  # any LWS after the scheme (a tab, a fold)
    if scheme.lower() != "digest":
        raise DecodeError(f"scheme {scheme[:20]!r} is not Digest", fmt=FMT, path=field)
    out: dict[str, str] = {}
    repeated: tuple[str, int] | None = None  # the first name given again and where: said once all are read
    pos = count = 0
    rest = rest.strip()
    while pos < len(rest):
        m = _PARAM_RE.match(rest, pos)
        if m is None:
            raise DecodeError(f"parameter {rest[pos:pos + 40]!r} does not parse", fmt=FMT, path=field,
                              offset=pos)
        raw = m.group(2)
        value = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
        bad = _CONTROL_RE.search(value)
        if bad is not None:  # not qdtext (RFC 3261 §25.1): never echoed into the phone's answer
            raise DecodeError(f"parameter {m.group(1)!r} carries control character 0x{ord(bad.group()):02x}",
                              fmt=FMT, path=field, offset=pos)
        name = m.group(1).lower()
        if name in out and repeated is None:
            repeated = (m.group(1), pos)
        out[name] = value
        pos = m.end()
        count += 1  # parameters read, repeats included: a repeated name does not lift the bound
        if count > 32:
            raise DecodeError("more than 32 parameters", fmt=FMT, path=field, offset=m.start())
    if repeated is not None:
        raise DecodeError(f"parameter {repeated[0]!r} given twice (names in any case; RFC 7235 §2.1: each "
                          "only once per challenge)", fmt=FMT, path=field, offset=repeated[1])
    return out


#: the digest algorithms the phone answers (RFC 2617; CUCM's is MD5, spec §G.13)
DIGEST_ALGORITHMS = frozenset({"MD5", "MD5-SESS"})


def digest_challenges(msg: SipMessage, field: str = "WWW-Authenticate") -> list[dict[str, str]]:
    """The Digest challenges of every ``field`` header of ``msg`` in order (RFC 7616 §3.7: a server may
    offer several, e.g. SHA-256 then MD5); other schemes (Basic) are left out. DecodeError when a Digest
    one does not parse and none other does."""
    out: list[dict[str, str]] = []
    error: DecodeError | None = None
    want = field.lower()
    for k, v in msg.headers:
        if k.lower() != want or (v.split(None, 1) or [""])[0].lower() != "digest":
            continue
        try:
            out.append(parse_digest(v, field=field))
        except DecodeError as exc:
            error = error or exc
        if len(out) >= 8:
            break
    if not out and error is not None:
        raise error
    return out


def pick_challenge(challenges: list[dict[str, str]]) -> dict[str, str] | None:
    """The first challenge the phone can answer: an algorithm of :data:`DIGEST_ALGORITHMS` (MD5 when
    absent, RFC 2617 §3.2.1), MD5-sess only with a qop, and a qop (when offered) of ``auth`` or
    ``auth-int``; None when there is none."""
    for ch in challenges:
        algorithm = ascii_upper(ch.get("algorithm", "MD5"))
        qops = {q.strip() for q in ch.get("qop", "").split(",") if q.strip()}
        if algorithm not in DIGEST_ALGORITHMS or (algorithm == "MD5-SESS" and not qops):
            continue
        if qops and not qops & {"auth", "auth-int"}:
            continue
        return ch
    return None


def format_digest(params: list[tuple[str, str]], *, unquoted: frozenset[str] = frozenset(
        {"algorithm", "qop", "nc", "stale"})) -> str:
    """``Digest k="v", ...`` (``unquoted`` names as tokens, RFC 2617 §3.2.1, §3.2.2)."""
    def one(k: str, v: str) -> str:
        if k in unquoted:
            return f"{k}={v}"
        escaped = v.replace("\\", "\\\\").replace('"', '\\"')
        return f'{k}="{escaped}"'
    return "Digest " + ", ".join(one(k, v) for k, v in params)
