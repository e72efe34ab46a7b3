"""TVS (Trust Verification Service) message codec and decision helper — spec §E, sans-I/O.

Framing (spec §E.2): a 10-byte header ``0x57 | version 1 | message type | reserved | session id
(uint32 BE) | body length (uint16 BE)`` followed by element TLVs (1-byte tag, uint16 length).

* Message types (§E.3): 1 VERIFY_REQUEST, 2 VERIFY_RESPONSE, 3 QUERY_REQUEST, 4 QUERY_RESPONSE;
  anything else is a ProtocolError on decode.
* Header byte 3 is [UNK] in the spec. **Our choice**: we write 0x00 in requests and responses;
  decode accepts any value (CUCM sends 0xF7 in responses) and keeps it in ``TvsMessage.reserved``.
* Elements (§E.4): 1 DEVICE_NAME (one prefix byte, 0x01 as phones send it — its meaning is
  [UNK], any value is accepted on decode — then the ASCII name with no NUL), 2 CERTIFICATE (DER),
  3 SUBJECT (NUL-terminated DN string), 7 STATUS (1 byte, 0 valid, 1 invalid),
  8 ROLES (one byte per role code, §B.3), 9 TTL (uint32 seconds).
  **Tags 4 ISSUER and 5 SERIAL are [INF]**: the spec infers them by length arithmetic on a
  truncated CUCM dump (a 22-byte NUL-terminated issuer string and a 19-byte serial); we encode the
  issuer as a NUL-terminated DN string and the serial as the raw certificate serial bytes.
* Unknown element tags survive decode → encode unchanged, in order.
* A response's STATUS, CERTIFICATE, ROLES or TTL repeated with another value is a DecodeError (spec §E.4
  is silent on repeats; **our convention**, :func:`_no_conflicting_repeats`): the phone and ``phoneemu
  tvs`` read responses here, so neither picks one of two contradicting answers.
* The session id is echoed by the server; the client checks that the response echoes the
  request's session id and answers its type (2 for 1, 4 for 3) — :func:`check_response`. The response is
  the first frame after the request; bytes after it are not part of the exchange (:class:`TvsClientExchange`).
* Server decision (§E.6): found → STATUS 0 [, CERTIFICATE for QUERY], ROLES, TTL (the CUCM order of
  §E.4); not found → STATUS 1 only. See :func:`answer`.
* Speed (issue #6, a lab answers one QUERY per phone boot): a well-formed frame is decoded and a message
  encoded in one pass with ``struct`` (:func:`_quick_frame`, :func:`_quick_encode`); anything else —
  a malformed frame, a value out of range — takes the checked path, which raises the error it always did.
  Both give the same message and the same bytes (tests/property/test_tvs_lab_fast_props.py).
"""

from __future__ import annotations

import enum
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from phoneemu.errors import DecodeError, EncodeError, ProtocolError
from phoneemu.protocols._elements import (
    MAX_BODY,
    Element,
    FrameBuffer,
    encode_elements,
    find,
    frame_body,
    one_frame,
    open_frame,
)
from phoneemu.wire import Writer

__all__ = [
    "DEFAULT_TTL",
    "HEADER_SIZE",
    "MAX_FRAME",
    "PROTOCOL_DISCRIMINATOR",
    "VERSION",
    "Element",
    "FrameDecoder",
    "QueryKey",
    "QueryRequest",
    "TvsClientExchange",
    "TvsEntry",
    "TvsLookup",
    "TvsMessage",
    "TvsMsgType",
    "TvsResponse",
    "TvsServerConnection",
    "TvsStatus",
    "TvsTag",
    "VerifyRequest",
    "answer",
    "check_response",
    "decode",
    "encode",
    "is_valid_device_name",
    "parse_request",
    "phone_device_name",
    "query_request",
    "query_request_fits",
    "response",
    "validate_device_name",
    "verify_request",
    "verify_request_fits",
]

FMT = "tvs"
PROTOCOL_DISCRIMINATOR = 0x57
VERSION = 1
HEADER_SIZE = 10
MAX_FRAME = HEADER_SIZE + MAX_BODY
DEFAULT_TTL = 86400
DEVICE_NAME_PREFIX = 0x01


class TvsMsgType(enum.IntEnum):
    """Spec §E.3."""

    VERIFY_REQUEST = 1
    VERIFY_RESPONSE = 2
    QUERY_REQUEST = 3
    QUERY_RESPONSE = 4


class TvsTag(enum.IntEnum):
    """Spec §E.4; ISSUER (4) and SERIAL (5) are [INF]."""

    DEVICE_NAME = 1
    CERTIFICATE = 2
    SUBJECT = 3
    ISSUER = 4  # [INF] spec §E.4: inferred by length arithmetic, not seen in a complete dump
    SERIAL = 5  # [INF] spec §E.4: idem
    STATUS = 7
    ROLES = 8
    TTL = 9


class TvsStatus(enum.IntEnum):
    VALID = 0
    INVALID = 1


_NAMES = {t.value: t.name for t in TvsTag}
_MSG_TYPES = frozenset(t.value for t in TvsMsgType)
_RESPONSE_FOR = {TvsMsgType.VERIFY_REQUEST: TvsMsgType.VERIFY_RESPONSE,
                 TvsMsgType.QUERY_REQUEST: TvsMsgType.QUERY_RESPONSE}


@dataclass(frozen=True, kw_only=True)
class TvsMessage:
    """One TVS frame. ``elements`` keeps order and unknown tags; ``reserved`` is header byte 3."""

    msg_type: int
    session_id: int
    elements: tuple[Element, ...] = ()
    reserved: int = 0

    def __post_init__(self) -> None:
        if self.msg_type not in TvsMsgType._value2member_map_:
            raise EncodeError(f"unknown TVS message type {self.msg_type} (1..4)", fmt=FMT,
                              path="msg_type")
        if not 0 <= self.session_id <= 0xFFFFFFFF:
            raise EncodeError(f"session id {self.session_id} does not fit in uint32", fmt=FMT,
                              path="session_id")
        if not 0 <= self.reserved <= 0xFF:
            raise EncodeError(f"reserved byte {self.reserved} out of range", fmt=FMT, path="reserved")
        body = sum(3 + len(e.value) for e in self.elements)
        if body > MAX_BODY:
            raise EncodeError(f"body of {body} bytes exceeds 65535", fmt=FMT, path="elements")

    def get(self, tag: int) -> bytes | None:
        return find(self.elements, tag)


# --- framing -------------------------------------------------------------------------------------

_HEADER = struct.Struct(">BBBBIH")  # discriminator, version, type, reserved, session id, body length
_TLV_HEAD = struct.Struct(">BH")  # element tag, value length
_set = object.__setattr__  # fills a frozen dataclass whose fields are already checked (see _quick_frame)
_ONE_BYTE = tuple(bytes([i]) for i in range(256))


def encode(msg: TvsMessage) -> bytes:
    """Header (spec §E.2) + element TLVs; what :func:`_quick_encode` cannot write is written (or refused
    with the field named) by :func:`_checked_encode`."""
    wire = _quick_encode(msg)
    return wire if wire is not None else _checked_encode(msg)


def _quick_encode(msg: TvsMessage) -> bytes | None:
    """The frame of ``msg`` in one join, or None when a field is out of range or a value is not ``bytes``
    (the checked encoder then says which)."""
    parts = [b""]
    body = 0
    try:
        for e in msg.elements:
            value = e.value
            if type(value) is not bytes:
                return None
            parts += (_TLV_HEAD.pack(e.tag, len(value)), value)
            body += 3 + len(value)
        parts[0] = _HEADER.pack(PROTOCOL_DISCRIMINATOR, VERSION, msg.msg_type, msg.reserved, msg.session_id,
                                body)
    except struct.error:  # a tag, type, session id, reserved byte or length out of range
        return None
    return b"".join(parts)


def _checked_encode(msg: TvsMessage) -> bytes:
    w = Writer(fmt=FMT)
    w.u8(PROTOCOL_DISCRIMINATOR, "discriminator")
    w.u8(VERSION, "version")
    w.u8(msg.msg_type, "msg_type")
    w.u8(msg.reserved, "reserved")
    w.u32(msg.session_id, "session_id")
    with w.block16(field="body"):
        encode_elements(w, msg.elements)
    return w.getvalue()


def _check_header(header: bytes, stream_offset: int, path: str = "header") -> None:
    if len(header) >= 1 and header[0] != PROTOCOL_DISCRIMINATOR:
        raise ProtocolError(f"protocol discriminator 0x{header[0]:02x}, expected 0x57", fmt=FMT,
                            offset=stream_offset, path=f"{path}.discriminator")
    if len(header) >= 2 and header[1] != VERSION:
        raise ProtocolError(f"version {header[1]}, expected 1", fmt=FMT, offset=stream_offset + 1,
                            path=f"{path}.version")
    if len(header) >= 3 and header[2] not in TvsMsgType._value2member_map_:
        raise ProtocolError(f"unknown message type {header[2]} (1..4)", fmt=FMT,
                            offset=stream_offset + 2, path=f"{path}.msg_type")


def _decode_frame(data: bytes, path: str) -> TvsMessage:
    msg = _quick_frame(data)
    return msg if msg is not None else _checked_frame(data, path)


def _quick_frame(data: bytes) -> TvsMessage | None:
    """The message of one well-formed frame in a single pass, or None for anything else (the checked
    decoder then raises the error it always did). Accepts exactly what :func:`_checked_frame` accepts, so
    the message is built without running the checks of ``__post_init__`` again: a header and TLV heads
    of fixed-size fields cannot hold an out-of-range value, and the body length bounds the elements."""
    size = len(data)
    if size < HEADER_SIZE:
        return None
    discriminator, version, msg_type, reserved, session_id, body = _HEADER.unpack_from(data)
    if (discriminator != PROTOCOL_DISCRIMINATOR or version != VERSION or msg_type not in _MSG_TYPES
            or body != size - HEADER_SIZE):
        return None
    elements: list[Element] = []
    pos = HEADER_SIZE
    new, unpack = object.__new__, _TLV_HEAD.unpack_from
    while pos < size:  # bounded: every element moves on by at least its 3-byte head
        if size - pos < 3:
            return None
        tag, length = unpack(data, pos)
        pos += 3
        end = pos + length
        if end > size:
            return None
        element = new(Element)  # _element, inlined: one call less per element
        _set(element, "tag", tag)
        _set(element, "value", data[pos:end])
        elements.append(element)
        pos = end
    return _message(msg_type, session_id, tuple(elements), reserved)


def _message(msg_type: int, session_id: int, elements: tuple[Element, ...], reserved: int) -> TvsMessage:
    """``TvsMessage(...)`` without running its ``__post_init__`` again: only for fields known to hold
    what it checks (a known type, a uint32 session id, a reserved byte, a body within 65535 bytes)."""
    msg = object.__new__(TvsMessage)
    _set(msg, "msg_type", msg_type)
    _set(msg, "session_id", session_id)
    _set(msg, "elements", elements)
    _set(msg, "reserved", reserved)
    return msg


def _element(tag: int, value: bytes) -> Element:
    """``Element(tag=tag, value=value)`` without running its ``__post_init__`` again: only for a tag
    0..255 and a value of at most 65535 bytes, what that checks."""
    element = object.__new__(Element)
    _set(element, "tag", tag)
    _set(element, "value", value)
    return element


def _bounded_element(tag: TvsTag, value: bytes) -> Element:
    """An element of a known tag whose value may be too long: then ``Element`` refuses it as ever."""
    return _element(tag, value) if len(value) <= MAX_BODY else Element(tag=tag, value=value)


def _built(msg_type: TvsMsgType, session_id: int, elements: tuple[Element, ...],
           reserved: int = 0) -> TvsMessage:
    """A message of ``elements`` made here, each already checked: what ``TvsMessage`` would check besides
    (the session id, the reserved byte, the body size) is checked, and a message that fails it goes to
    ``TvsMessage``, which refuses it as ever (the field named)."""
    body = 0
    for e in elements:
        body += 3 + len(e.value)
    if 0 <= session_id <= 0xFFFFFFFF and 0 <= reserved <= 0xFF and body <= MAX_BODY:
        return _message(msg_type, session_id, elements, reserved)
    return TvsMessage(msg_type=msg_type, session_id=session_id, elements=elements, reserved=reserved)


def _checked_frame(data: bytes, path: str) -> TvsMessage:
    r = open_frame(data, path, fmt=FMT, header_size=HEADER_SIZE, check_header=_check_header)
    r.seek(2)
    msg_type = r.u8("header.msg_type")
    reserved = r.u8("header.reserved")
    session_id = r.u32("header.session_id")
    elements = frame_body(r, names=_NAMES)
    return TvsMessage(msg_type=msg_type, session_id=session_id, elements=elements, reserved=reserved)


def decode(data: bytes) -> TvsMessage:
    """Exactly one message: a short frame or bytes after the body are DecodeErrors, more than
    ``MAX_FRAME`` bytes a SizeLimitError (before any copy; ``_elements.one_frame``)."""
    return _decode_frame(one_frame(data, fmt=FMT, header_size=HEADER_SIZE), "")


class FrameDecoder(FrameBuffer[TvsMessage]):
    """Incremental decoder: ``feed(bytes) -> list[TvsMessage]``; buffers at most one partial frame
    (``MAX_FRAME`` bytes). Malformed input raises ProtocolError/DecodeError and poisons the decoder;
    ``eof()`` raises DecodeError if the stream ended inside a frame."""

    def __init__(self) -> None:
        super().__init__(fmt=FMT, header_size=HEADER_SIZE, body_length_at=8,
                         check_header=_check_header, decode=_decode_frame)

    def feed(self, data: bytes) -> list[TvsMessage]:
        """As :meth:`FrameBuffer.feed`. The common case — nothing buffered and ``data`` one whole
        well-formed frame (a phone's request in one TLS record) — is decoded straight from ``data``,
        without copying it through the buffer; everything else takes the general path."""
        if (type(data) is bytes and not self._buf and self._failed is None and len(data) >= HEADER_SIZE
                and len(data) == HEADER_SIZE + ((data[8] << 8) | data[9])):
            msg = _quick_frame(data)
            if msg is not None:
                self._consumed += len(data)
                self._frames += 1
                return [msg]
        return super().feed(data)


# --- device names ---------------------------------------------------------------------------------

_DEVICE_NAME_RE = re.compile(r"CP-[0-9A-Za-z]+-SEP[0-9A-Fa-f]{12}")


def phone_device_name(model: str, device: str) -> str:
    """The DEVICE_NAME a phone sends TVS (spec §E.4): ``CP-<model>-SEP<MAC>`` from its model (``CP-8861``)
    and device name (``SEPB000B4BA0AEE``)."""
    return f"{model}-{device}"


def is_valid_device_name(name: str) -> bool:
    """``CP-<model>-SEP<12 hex>`` (spec §E.4, e.g. ``CP-8861-SEPB000B4BA0AEE``); a value that is not text
    is no such name (was: TypeError)."""
    return isinstance(name, str) and _DEVICE_NAME_RE.fullmatch(name) is not None


def validate_device_name(name: str, *, strict: bool = False) -> bool:
    """Lenient (default): return whether the name has the Cisco shape. Strict: raise ProtocolError.

    tvsd refuses names other than ``CP-dddd-SEP`` + 12 hex digits (spec §E.6); we allow any
    alphanumeric model when strict.
    """
    ok = is_valid_device_name(name)
    if strict and not ok:
        raise ProtocolError(f"device name {name!r} is not CP-<model>-SEP<12 hex>", fmt=FMT,
                            path="DEVICE_NAME", tag=TvsTag.DEVICE_NAME)
    return ok


def _device_name_value(name: str) -> bytes:
    try:
        raw = name.encode("ascii")
    except UnicodeEncodeError:
        raise EncodeError(f"device name {name!r} is not ASCII", fmt=FMT, path="device_name") from None
    if b"\0" in raw:
        raise EncodeError("device name contains NUL", fmt=FMT, path="device_name")
    return bytes([DEVICE_NAME_PREFIX]) + raw


def _cstring_value(text: str, field: str) -> bytes:
    # surrogateescape: a signer name read from a file header keeps its undecodable bytes that way
    # (formats.header), and the phone sends TVS those very bytes back (it was a UnicodeEncodeError)
    raw = text.encode("utf-8", "surrogateescape")
    if b"\0" in raw:
        raise EncodeError(f"{field} contains NUL", fmt=FMT, path=field)
    return raw + b"\0"


def _value_error(msg: TvsMessage, tag: TvsTag, text: str) -> DecodeError:
    return DecodeError(text, fmt=FMT, path=tag.name, tag=int(tag))


def _require(msg: TvsMessage, tag: TvsTag) -> bytes:
    v = msg.get(tag)
    if v is None:
        raise ProtocolError(f"{TvsMsgType(msg.msg_type).name} lacks element {tag.name}", fmt=FMT,
                            path=tag.name, tag=int(tag))
    return v


def _decode_device_name(msg: TvsMessage) -> str:
    v = _require(msg, TvsTag.DEVICE_NAME)
    if len(v) < 2:
        raise _value_error(msg, TvsTag.DEVICE_NAME, f"value of {len(v)} byte(s): need prefix + name")
    try:
        return v[1:].decode("ascii")
    except UnicodeDecodeError:
        raise _value_error(msg, TvsTag.DEVICE_NAME, "name is not ASCII") from None


def _decode_cstring(msg: TvsMessage, tag: TvsTag) -> str:
    v = _require(msg, tag)
    if not v or v[-1] != 0 or b"\0" in v[:-1]:
        raise _value_error(msg, tag, "string is not NUL-terminated (or has an inner NUL)")
    try:
        return v[:-1].decode("utf-8")
    except UnicodeDecodeError:
        raise _value_error(msg, tag, "string is not UTF-8") from None


# --- typed requests and responses -----------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class VerifyRequest:
    """Parsed VERIFY_REQUEST (type 1): "is this certificate trusted, with which roles?"."""

    session_id: int
    device_name: str
    certificate: bytes


@dataclass(frozen=True, kw_only=True)
class QueryRequest:
    """Parsed QUERY_REQUEST (type 3): "return the certificate with this issuer and serial"."""

    session_id: int
    device_name: str
    subject: str
    issuer: str
    serial: bytes


@dataclass(frozen=True, kw_only=True)
class TvsResponse:
    """Parsed response (type 2 or 4). ``roles``/``ttl``/``certificate`` are empty/None when absent."""

    session_id: int
    msg_type: int
    status: int
    roles: tuple[int, ...] = ()
    ttl: int | None = None
    certificate: bytes | None = None

    @property
    def valid(self) -> bool:
        return self.status == TvsStatus.VALID

    @classmethod
    def from_message(cls, msg: TvsMessage) -> TvsResponse:
        if msg.msg_type not in (TvsMsgType.VERIFY_RESPONSE, TvsMsgType.QUERY_RESPONSE):
            raise ProtocolError(f"message type {msg.msg_type} is not a response (2 or 4)", fmt=FMT,
                                path="msg_type")
        _no_conflicting_repeats(msg)
        status = _require(msg, TvsTag.STATUS)
        if len(status) != 1:
            raise _value_error(msg, TvsTag.STATUS, f"value of {len(status)} bytes, expected 1")
        ttl_raw = msg.get(TvsTag.TTL)
        if ttl_raw is not None and len(ttl_raw) != 4:
            raise _value_error(msg, TvsTag.TTL, f"value of {len(ttl_raw)} bytes, expected 4")
        roles = msg.get(TvsTag.ROLES)
        return cls(
            session_id=msg.session_id, msg_type=msg.msg_type, status=status[0],
            roles=tuple(roles) if roles is not None else (),
            ttl=int.from_bytes(ttl_raw, "big") if ttl_raw is not None else None,
            certificate=msg.get(TvsTag.CERTIFICATE),
        )


_ANSWER_TAGS = (TvsTag.STATUS, TvsTag.CERTIFICATE, TvsTag.ROLES, TvsTag.TTL)
_ANSWER_TAG_SET = frozenset(int(tag) for tag in _ANSWER_TAGS)


def _no_conflicting_repeats(msg: TvsMessage) -> None:
    """A response element given twice with different values (two STATUS: valid and invalid) is malformed:
    which one counts is not for the reader to pick. Spec §E.4 is silent on repeats; **our convention**:
    the same value repeated is accepted (it says one thing), a different one is a DecodeError."""
    first: dict[int, bytes] = {}
    for e in msg.elements:  # one pass finds none in the common case; else the tag is named below
        if e.tag in _ANSWER_TAG_SET and first.setdefault(e.tag, e.value) != e.value:
            break
    else:
        return
    for tag in _ANSWER_TAGS:
        values = {e.value for e in msg.elements if e.tag == tag}
        if len(values) > 1:
            raise _value_error(msg, tag, f"{len(values)} different values (element repeated): the answer "
                               "contradicts itself")


def verify_request(session_id: int, device_name: str, cert_der: bytes) -> TvsMessage:
    """VERIFY_REQUEST: DEVICE_NAME, CERTIFICATE (spec §E.3/§E.4)."""
    return _built(TvsMsgType.VERIFY_REQUEST, session_id, (
        _bounded_element(TvsTag.DEVICE_NAME, _device_name_value(device_name)),
        _bounded_element(TvsTag.CERTIFICATE, bytes(cert_der)),
    ))


def verify_request_fits(device_name: str, cert_der: bytes) -> bool:
    """Whether :func:`verify_request` can carry ``cert_der``: the body (DEVICE_NAME and CERTIFICATE
    elements, 3-byte TLV heads) within the uint16 body length of the header (spec §E.2). A certificate of
    about 64 KiB or more cannot be sent to TVS at all: the phone never asks (our reading of §E.2)."""
    name = len(device_name.encode("ascii", "replace")) + 1  # the prefix byte (§E.4)
    return (3 + name) + (3 + len(cert_der)) <= MAX_BODY


def query_request_fits(device_name: str, subject: str, issuer: str, serial: bytes) -> bool:
    """Whether :func:`query_request` can carry this key: DEVICE_NAME, SUBJECT, ISSUER (NUL-terminated
    UTF-8) and SERIAL within the uint16 body length (spec §E.2)."""
    name = len(device_name.encode("ascii", "replace")) + 1
    body = (3 + name) + (3 + len(subject.encode("utf-8", "surrogateescape")) + 1) \
        + (3 + len(issuer.encode("utf-8", "surrogateescape")) + 1) + (3 + len(serial))
    return body <= MAX_BODY


def query_request(session_id: int, device_name: str, subject: str, issuer: str,
                  serial: bytes) -> TvsMessage:
    """QUERY_REQUEST: DEVICE_NAME, SUBJECT, ISSUER [INF], SERIAL [INF] — the CUCM order (§E.5)."""
    return _built(TvsMsgType.QUERY_REQUEST, session_id, (
        _bounded_element(TvsTag.DEVICE_NAME, _device_name_value(device_name)),
        _bounded_element(TvsTag.SUBJECT, _cstring_value(subject, "subject")),
        _bounded_element(TvsTag.ISSUER, _cstring_value(issuer, "issuer")),
        _bounded_element(TvsTag.SERIAL, bytes(serial)),
    ))


def response(request: TvsMessage | VerifyRequest | QueryRequest, *, status: int,
             roles: Sequence[int] = (), ttl: int | None = None, certificate: bytes | None = None,
             reserved: int = 0) -> TvsMessage:
    """Response to ``request`` echoing its session id; elements STATUS, [CERTIFICATE], [ROLES], [TTL]
    in the order of the CUCM QUERY response (spec §E.4). Roles/TTL/certificate are omitted when
    ``status`` is not 0 (§E.6: not found → status only)."""
    if isinstance(request, TvsMessage):
        req_type = TvsMsgType(request.msg_type)
    else:
        req_type = (TvsMsgType.VERIFY_REQUEST if isinstance(request, VerifyRequest)
                    else TvsMsgType.QUERY_REQUEST)
    if req_type not in _RESPONSE_FOR:
        raise EncodeError(f"message type {req_type} is not a request", fmt=FMT, path="request")
    if not 0 <= status <= 0xFF:
        raise EncodeError(f"status {status} out of range", fmt=FMT, path="status")
    elements = [_element(TvsTag.STATUS, _ONE_BYTE[status])]
    if status == TvsStatus.VALID:
        if certificate is not None:
            elements.append(_bounded_element(TvsTag.CERTIFICATE, bytes(certificate)))
        for role in roles:
            if not 0 <= role <= 0xFF:
                raise EncodeError(f"role {role} does not fit in one byte", fmt=FMT, path="roles")
        elements.append(_bounded_element(TvsTag.ROLES, bytes(roles)))
        if ttl is not None:
            if not 0 <= ttl <= 0xFFFFFFFF:
                raise EncodeError(f"ttl {ttl} does not fit in uint32", fmt=FMT, path="ttl")
            elements.append(_element(TvsTag.TTL, ttl.to_bytes(4, "big")))
    return _built(_RESPONSE_FOR[req_type], request.session_id, tuple(elements), reserved)


def parse_request(msg: TvsMessage) -> VerifyRequest | QueryRequest:
    """Typed view of a request; missing elements → ProtocolError, bad values → DecodeError."""
    if msg.msg_type == TvsMsgType.VERIFY_REQUEST:
        return VerifyRequest(session_id=msg.session_id, device_name=_decode_device_name(msg),
                             certificate=_require(msg, TvsTag.CERTIFICATE))
    if msg.msg_type == TvsMsgType.QUERY_REQUEST:
        return QueryRequest(session_id=msg.session_id, device_name=_decode_device_name(msg),
                            subject=_decode_cstring(msg, TvsTag.SUBJECT),
                            issuer=_decode_cstring(msg, TvsTag.ISSUER),
                            serial=_require(msg, TvsTag.SERIAL))
    raise ProtocolError(f"message type {msg.msg_type} is not a request (1 or 3)", fmt=FMT,
                        path="msg_type")


def check_response(request: TvsMessage, reply: TvsMessage) -> TvsResponse:
    """Client side: the reply must echo the request's session id and answer its type."""
    expected = _RESPONSE_FOR.get(TvsMsgType(request.msg_type))
    if expected is None:
        raise ProtocolError(f"message type {request.msg_type} is not a request", fmt=FMT,
                            path="msg_type")
    if reply.msg_type != expected:
        raise ProtocolError(f"response type {reply.msg_type}, expected {int(expected)}", fmt=FMT,
                            path="msg_type")
    if reply.session_id != request.session_id:
        raise ProtocolError(f"response session id {reply.session_id}, expected {request.session_id}",
                            fmt=FMT, path="session_id")
    return TvsResponse.from_message(reply)


# --- server decision ------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class TvsEntry:
    """What the lab knows about a certificate: its DER, its roles (§B.3 codes) and the cache TTL."""

    cert_der: bytes
    roles: tuple[int, ...]
    ttl: int = DEFAULT_TTL


QueryKey = tuple[str, bytes, str]
"""(issuer, serial, subject) of a QUERY request."""

TvsLookup = Callable[[bytes | QueryKey], TvsEntry | None]
"""Called with the certificate DER for VERIFY, or (issuer, serial, subject) for QUERY."""


def answer(request: TvsMessage | VerifyRequest | QueryRequest, lookup: TvsLookup, *,
           reserved: int = 0) -> TvsMessage:
    """Server side (spec §E.6): look the certificate up and build the response.

    Not found → STATUS 1 only. Found → STATUS 0, CERTIFICATE (QUERY only), ROLES, TTL.
    """
    req = parse_request(request) if isinstance(request, TvsMessage) else request
    if isinstance(req, VerifyRequest):
        entry = lookup(req.certificate)
        if entry is None:
            return response(req, status=TvsStatus.INVALID, reserved=reserved)
        return response(req, status=TvsStatus.VALID, roles=entry.roles, ttl=entry.ttl,
                        reserved=reserved)
    entry = lookup((req.issuer, req.serial, req.subject))
    if entry is None:
        return response(req, status=TvsStatus.INVALID, reserved=reserved)
    return response(req, status=TvsStatus.VALID, roles=entry.roles, ttl=entry.ttl,
                    certificate=entry.cert_der, reserved=reserved)


# --- connection helpers for the I/O shell -----------------------------------------------------------

class TvsClientExchange:
    """Phone side of one request/response (tvsc: one exchange per TLS connection, §E.1).

    Send ``request_bytes``; feed what arrives to ``receive()`` until it returns the checked
    :class:`TvsResponse`; call ``eof()`` if the peer closes first (truncation → DecodeError).

    One request, one response (spec §E.1): the response is the **first** frame of the stream, read by its
    body length (§E.2) as a phone does. It must echo the request's session id and answer its type (§E.2,
    §E.3), else it is refused — a later frame is never taken in its place. What the server sends after
    it (a second response, a partial frame, garbage) is not part of the exchange and never changes the
    answer: it is ignored whether it arrives in the same read or a later one (the client closes after
    the response and does not wait for more). **Our convention**, where the spec is silent: the outcome
    must not depend on how TLS records and reads happen to split the stream (before, a second response
    in the same read refused the server, one in a later read did not).
    """

    def __init__(self, request: TvsMessage) -> None:
        if request.msg_type not in _RESPONSE_FOR:
            raise EncodeError(f"message type {request.msg_type} is not a request", fmt=FMT,
                              path="msg_type")
        self.request = request
        self.request_bytes = encode(request)
        self._decoder = FrameDecoder()
        self.response: TvsResponse | None = None

    @property
    def done(self) -> bool:
        return self.response is not None

    def receive(self, data: bytes) -> TvsResponse | None:
        """The checked response once its frame is complete, else None. The first frame is the response:
        another session id or type is a ProtocolError (:func:`check_response`), never skipped for a later
        frame. Bytes after it in ``data`` are not part of the exchange and are ignored (class docstring);
        a call after the response is a ProtocolError (the caller reads past the exchange)."""
        if self.response is not None:
            raise ProtocolError("more than one response to a single request: the exchange ended with the "
                                "first (one request, one response per connection, spec §E.1)", fmt=FMT,
                                path="response")
        msgs = self._decoder.feed(data)
        if not msgs:
            return None
        self.response = check_response(self.request, msgs[0])
        return self.response

    def eof(self) -> None:
        """The peer closed: DecodeError unless the response arrived (what followed it does not count)."""
        if self.response is not None:
            return
        self._decoder.eof()
        raise DecodeError("connection closed before a response arrived", fmt=FMT, path="response")


class TvsServerConnection:
    """TVS side of one connection: ``receive(data) -> list[bytes]`` answers every complete request
    with :func:`answer`; responses (types 2/4) from the peer are a ProtocolError."""

    def __init__(self, lookup: TvsLookup, *, reserved: int = 0,
                 strict_device_name: bool = False) -> None:
        self._lookup = lookup
        self._reserved = reserved
        self._strict = strict_device_name
        self._decoder = FrameDecoder()
        self.requests: list[VerifyRequest | QueryRequest] = []

    def receive(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        for msg in self._decoder.feed(data):
            req = parse_request(msg)
            validate_device_name(req.device_name, strict=self._strict)
            self.requests.append(req)
            out.append(encode(answer(req, self._lookup, reserved=self._reserved)))
        return out
