"""TFTP packet codec, sans-I/O (RFC 1350, options RFC 2347/2348/2349; spec §C.6, §H.1).

Rules implemented here:

* Packets: RRQ(1)/WRQ(2) ``filename NUL mode NUL [opt NUL value NUL]*``, DATA(3) ``block data``,
  ACK(4) ``block``, ERROR(5) ``code message NUL``, OACK(6) ``[opt NUL value NUL]*``.
* Option names are case-insensitive (RFC 2347) and kept lower-cased; a repeated option is malformed.
* Known option values are validated by :func:`negotiated`: ``blksize`` 8..65464 (RFC 2348),
  ``timeout`` 1..255 seconds (RFC 2349), ``tsize`` a non-negative integer (RFC 2349).
  Unknown options survive decoding untouched (design §3.4); servers ignore them.
* Every malformed packet raises :class:`DecodeError` with ``fmt="tftp"`` and the offset/field (an
  invalid option value too, when :func:`negotiated` is given the datagram).
* A datagram is bytes-like, measured in bytes, a memoryview's too (:func:`phoneemu.wire.as_bytes`);
  one longer than 65535 bytes (UDP's length field) is a SizeLimitError before any copy.
* Names: :func:`unsafe_name_reason` is the one traversal rule shared by the TFTP server, the HTTP
  server and the in-memory fetcher (a name with ``..``, a leading ``/``, a backslash, a NUL or a
  control character, or a drive letter — ``C:`` alone or followed by more — is refused). That policy is
  ours: real TFTP servers vary.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from phoneemu.errors import DecodeError, EncodeError, SizeLimitError
from phoneemu.values import parse_ascii_int
from phoneemu.wire import as_bytes

__all__ = [
    "BLKSIZE_MAX",
    "BLKSIZE_MIN",
    "DEFAULT_BLKSIZE",
    "Ack",
    "Data",
    "Error",
    "ErrorCode",
    "NegotiatedOptions",
    "Opcode",
    "OptionAck",
    "Packet",
    "ReadRequest",
    "WriteRequest",
    "ack_packet",
    "data_packet",
    "decode",
    "encode",
    "error_packet",
    "negotiated",
    "option_offsets",
    "unsafe_name_reason",
]

DEFAULT_BLKSIZE = 512
BLKSIZE_MIN = 8
BLKSIZE_MAX = 65464
TIMEOUT_MIN = 1
TIMEOUT_MAX = 255
_MAX_DATAGRAM = 0xFFFF  # UDP's length field: no datagram is longer (module rules)
_MAX_STRING = 512  # any single string field (filename, mode, option) longer than this is malformed
_MODES = ("octet", "netascii", "mail")


class Opcode(enum.IntEnum):
    RRQ = 1
    WRQ = 2
    DATA = 3
    ACK = 4
    ERROR = 5
    OACK = 6


class ErrorCode(enum.IntEnum):
    """RFC 1350 error codes plus RFC 2347 code 8."""

    NOT_DEFINED = 0
    FILE_NOT_FOUND = 1
    ACCESS_VIOLATION = 2
    DISK_FULL = 3
    ILLEGAL_OPERATION = 4
    UNKNOWN_TID = 5
    FILE_EXISTS = 6
    NO_SUCH_USER = 7
    OPTION_REFUSED = 8


def _check_str(value: str, name: str) -> None:
    """ASCII (so one byte a character: the length in bytes is ``len``), no NUL, at most 512 bytes; checked
    without encoding a copy (every decoded request is checked again here)."""
    if not value.isascii():
        raise EncodeError(f"{name} must be ASCII", path=name)
    if "\x00" in value:
        raise EncodeError(f"{name} contains NUL", path=name)
    if len(value) > _MAX_STRING:
        raise EncodeError(f"{name} longer than {_MAX_STRING} bytes", path=name)


@dataclass(frozen=True, kw_only=True)
class ReadRequest:
    filename: str
    mode: str = "octet"
    options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_str(self.filename, "filename")
        if self.mode.lower() not in _MODES:
            raise EncodeError(f"unknown mode {self.mode!r}", path="mode")
        for k, v in self.options.items():
            _check_str(k, "option")
            _check_str(v, f"option.{k}")


@dataclass(frozen=True, kw_only=True)
class WriteRequest(ReadRequest):
    pass


@dataclass(frozen=True, kw_only=True)
class Data:
    block: int
    data: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.block <= 0xFFFF:
            raise EncodeError(f"block {self.block} out of range", path="block")
        if len(self.data) > BLKSIZE_MAX:
            raise EncodeError(f"data longer than {BLKSIZE_MAX}", path="data")


@dataclass(frozen=True, kw_only=True)
class Ack:
    block: int

    def __post_init__(self) -> None:
        if not 0 <= self.block <= 0xFFFF:
            raise EncodeError(f"block {self.block} out of range", path="block")


@dataclass(frozen=True, kw_only=True)
class Error:
    code: int
    message: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.code <= 0xFFFF:
            raise EncodeError(f"error code {self.code} out of range", path="code")


@dataclass(frozen=True, kw_only=True)
class OptionAck:
    options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for k, v in self.options.items():
            _check_str(k, "option")
            _check_str(v, f"option.{k}")


Packet = ReadRequest | WriteRequest | Data | Ack | Error | OptionAck


# --- encode ---------------------------------------------------------------------------
def _opts(options: dict[str, str]) -> bytes:
    return b"".join(k.encode("ascii") + b"\0" + v.encode("ascii") + b"\0" for k, v in options.items())


def encode(pkt: Packet) -> bytes:
    """Bytes of one TFTP packet."""
    if isinstance(pkt, ReadRequest):  # WriteRequest is a subclass
        op = Opcode.WRQ if isinstance(pkt, WriteRequest) else Opcode.RRQ
        return (op.to_bytes(2, "big") + pkt.filename.encode("ascii") + b"\0"
                + pkt.mode.encode("ascii") + b"\0" + _opts(pkt.options))
    if isinstance(pkt, Data):
        return b"\x00\x03" + pkt.block.to_bytes(2, "big") + pkt.data
    if isinstance(pkt, Ack):
        return b"\x00\x04" + pkt.block.to_bytes(2, "big")
    if isinstance(pkt, Error):
        msg = pkt.message.encode("ascii", "replace").replace(b"\0", b"?")[:_MAX_STRING]
        return b"\x00\x05" + pkt.code.to_bytes(2, "big") + msg + b"\0"
    return b"\x00\x06" + _opts(pkt.options)


def data_packet(block: int, chunk: bytes | memoryview) -> bytes:
    """Fast path for the server: a DATA packet without building a dataclass."""
    return b"\x00\x03" + (block & 0xFFFF).to_bytes(2, "big") + bytes(chunk)


def ack_packet(block: int) -> bytes:
    return b"\x00\x04" + (block & 0xFFFF).to_bytes(2, "big")


def error_packet(code: int, message: str) -> bytes:
    return encode(Error(code=code, message=message))


# --- decode ---------------------------------------------------------------------------
def _err(msg: str, offset: int, path: str) -> DecodeError:
    return DecodeError(msg, fmt="tftp", offset=offset, path=path)


def _strings(buf: bytes, pos: int, first_field: str) -> list[tuple[int, str]]:
    """Split ``buf[pos:]`` into NUL-terminated ASCII strings with their offsets."""
    if len(buf) > pos and buf[-1] == 0 and buf.isascii():
        split = _split_strings(buf, pos)
        if split is not None:
            return split
    out: list[tuple[int, str]] = []
    n = len(buf)
    while pos < n:
        end = buf.find(b"\0", pos)
        name = first_field if not out else f"string[{len(out)}]"
        if end < 0:
            raise _err("string is not NUL-terminated", pos, name)
        if end - pos > _MAX_STRING:
            raise _err(f"string longer than {_MAX_STRING} bytes", pos, name)
        raw = buf[pos:end]
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise _err("string is not ASCII", pos, name) from None
        out.append((pos, text))
        pos = end + 1
    return out


def _split_strings(buf: bytes, pos: int) -> list[tuple[int, str]] | None:
    """:func:`_strings` of an all-ASCII ``buf`` ending in NUL, split at once (every request a phone
    sends); None when a string is too long: :func:`_strings` then says which, as before."""
    out: list[tuple[int, str]] = []
    for raw in buf[pos:-1].split(b"\0"):
        if len(raw) > _MAX_STRING:
            return None
        out.append((pos, raw.decode("ascii")))
        pos += len(raw) + 1
    return out


def _options(items: list[tuple[int, str]], base_path: str) -> dict[str, str]:
    if len(items) % 2:
        off, name = items[-1]
        raise _err(f"option {name!r} has no value", off, f"{base_path}.{name.lower()}")
    opts: dict[str, str] = {}
    for i in range(0, len(items), 2):
        off, name = items[i]
        key = name.lower()
        if not key:
            raise _err("empty option name", off, base_path)
        if key in opts:
            raise _err(f"option {key!r} repeated", off, f"{base_path}.{key}")
        opts[key] = items[i + 1][1]
    return opts


def _datagram(buf: bytes) -> bytes:
    """``buf`` as bytes, bounded before any copy (module rules)."""
    return as_bytes(buf, fmt="tftp", limit=_MAX_DATAGRAM, too_large=lambda size: SizeLimitError(
        f"datagram of {size} bytes exceeds {_MAX_DATAGRAM}", fmt="tftp", offset=_MAX_DATAGRAM))


def _decoded_request(cls: type[ReadRequest], filename: str, mode: str,
                     options: dict[str, str]) -> ReadRequest:
    """A request of fields :func:`decode` has checked (ASCII, no NUL, at most 512 bytes, a known mode,
    option names lower-cased and unique): what ``__post_init__`` checks holds, so it is not run again
    (half the cost of decoding an RRQ; the lab server decodes one per file a phone asks for)."""
    req = object.__new__(cls)
    object.__setattr__(req, "filename", filename)
    object.__setattr__(req, "mode", mode)
    object.__setattr__(req, "options", options)
    return req


def decode(buf: bytes) -> Packet:
    """Parse one datagram; anything malformed raises DecodeError(fmt="tftp")."""
    buf = _datagram(buf)
    if len(buf) < 2:
        raise _err(f"need 2 bytes for opcode, got {len(buf)}", 0, "opcode")
    op = (buf[0] << 8) | buf[1]
    if op in {1, 2}:  # Opcode.RRQ, Opcode.WRQ (plain ints: an enum member is an attribute lookup)
        items = _strings(buf, 2, "filename")
        if len(items) < 2:
            raise _err("request needs filename and mode", len(buf), "mode" if items else "filename")
        mode = items[1][1].lower()
        if mode not in _MODES:
            raise _err(f"unknown mode {items[1][1]!r}", items[1][0], "mode")
        opts = _options(items[2:], "options")
        return _decoded_request(ReadRequest if op == 1 else WriteRequest, items[0][1], mode, opts)
    if op == Opcode.DATA:
        if len(buf) < 4:
            raise _err(f"need 2 bytes for block, got {len(buf) - 2}", 2, "block")
        if len(buf) - 4 > BLKSIZE_MAX:
            raise _err(f"data longer than {BLKSIZE_MAX}", 4, "data")
        return Data(block=(buf[2] << 8) | buf[3], data=bytes(buf[4:]))
    if op == Opcode.ACK:
        if len(buf) != 4:
            raise _err(f"ACK must be 4 bytes, got {len(buf)}", min(len(buf), 4), "block")
        return Ack(block=(buf[2] << 8) | buf[3])
    if op == Opcode.ERROR:
        if len(buf) < 5:
            raise _err("ERROR needs code and message", len(buf), "code" if len(buf) < 4 else "message")
        end = buf.find(b"\0", 4)
        if end < 0:
            raise _err("message is not NUL-terminated", 4, "message")
        if end != len(buf) - 1:
            raise _err("bytes after message", end + 1, "message")
        return Error(code=(buf[2] << 8) | buf[3], message=buf[4:end].decode("ascii", "replace"))
    if op == Opcode.OACK:
        return OptionAck(options=_options(_strings(buf, 2, "option"), "options"))
    raise _err(f"unknown opcode {op}", 0, "opcode")


# --- options --------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class NegotiatedOptions:
    """The known options of a request or OACK, validated; ``None`` means absent."""

    blksize: int | None = None
    timeout: int | None = None
    tsize: int | None = None


def option_offsets(buf: bytes) -> dict[str, int]:
    """Offset of each option's value in the RRQ/WRQ/OACK datagram ``buf``, by lower-cased option name
    (for the errors of :func:`negotiated`); empty when ``buf`` is no such packet or does not decode."""
    try:
        buf = _datagram(buf)
    except DecodeError:
        return {}
    if len(buf) < 2 or buf[0] != 0 or buf[1] not in (Opcode.RRQ, Opcode.WRQ, Opcode.OACK):
        return {}
    try:
        items = _strings(buf, 2, "filename" if buf[1] != Opcode.OACK else "option")
    except DecodeError:
        return {}
    items = items[2:] if buf[1] != Opcode.OACK else items
    return {items[i][1].lower(): items[i + 1][0] for i in range(0, len(items) - 1, 2)}


_NO_OPTIONS = NegotiatedOptions()


def _int_option(opts: dict[str, str], key: str, lo: int, hi: int | None, buf: bytes | None) -> int | None:
    if key not in opts:
        return None
    text = opts[key]
    parsed = parse_ascii_int(text, max_digits=12)
    problem = None
    if parsed is None:
        problem = f"value {text!r} is not a decimal integer"
    elif parsed < lo or (hi is not None and parsed > hi):
        problem = f"value {parsed} outside {f'{lo}..{hi}' if hi is not None else f'>= {lo}'}"
    if problem is not None:
        offset = option_offsets(buf).get(key) if buf is not None else None
        raise DecodeError(problem, fmt="tftp", offset=offset, path=f"options.{key}")
    return parsed


def negotiated(options: dict[str, str], *, buf: bytes | None = None) -> NegotiatedOptions:
    """Validate blksize (8..65464), timeout (1..255) and tsize (>= 0); DecodeError names the option,
    and the offset of its value when ``buf`` (the datagram the options came from) is given."""
    if not options:  # what phones send: nothing to validate
        return _NO_OPTIONS
    return NegotiatedOptions(
        blksize=_int_option(options, "blksize", BLKSIZE_MIN, BLKSIZE_MAX, buf),
        timeout=_int_option(options, "timeout", TIMEOUT_MIN, TIMEOUT_MAX, buf),
        tsize=_int_option(options, "tsize", 0, None, buf),
    )


_CONTROL_RE = re.compile("[\x00-\x1f\x7f]")


def unsafe_name_reason(name: str) -> str | None:
    """Why ``name`` must not be served (traversal, absolute, backslash, NUL/control), or None."""
    if not name:
        return "empty name"
    if name.startswith("/"):
        return "absolute name"
    if "\\" in name:
        return "backslash in name"
    if _CONTROL_RE.search(name):
        return "NUL or control character in name"
    if ".." in name and any(part == ".." for part in name.split("/")):
        return "'..' in name"
    if len(name) >= 2 and name[1] == ":":  # "C:" too: a bare drive (was: only "C:" followed by more)
        return "drive letter in name"
    return None
