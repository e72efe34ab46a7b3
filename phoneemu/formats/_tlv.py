"""Small helpers shared by the TLV formats (spec §0, §A.7).

* Strings are NUL-terminated and the length counts the NUL (spec §A.7).
* Bytes that are not UTF-8 are kept with ``surrogateescape`` so that a parse/build round trip
  reproduces them exactly; :func:`printable` renders such strings safely for humans.
* :class:`Memo` remembers the result of a *successful* pure decode of exact bytes (a header, a
  record), so decoding the same bytes again (a fuzzer's mutants share most of their seed's
  spans; ``detect`` then ``parse`` read the same header) costs a dictionary lookup. Failures are
  never remembered: bad bytes are decoded again and raise with their own offset. Memory is
  bounded by an entry count and a byte budget; when either is reached the memo starts afresh.
  :func:`clear_memos` empties them all (cold-path benchmarks).
* :func:`unchecked` builds a dataclass without its ``__post_init__`` checks (perf only), for values
  a decoder has already bounded (fixed-width integers, TLV values of at most 65535 bytes, strings
  decoded with ``surrogateescape``), which pass those checks by construction.
"""

from __future__ import annotations

import dataclasses
import re
import weakref
from typing import Any, Generic, TypeVar

from phoneemu.errors import DecodeError, EncodeError

__all__ = ["Memo", "check_cstring", "clear_memos", "decode_cstring", "encode_cstring", "printable",
           "printable_latin1", "unchecked"]

V = TypeVar("V")
D = TypeVar("D")
_MEMOS: weakref.WeakSet[Memo[Any]] = weakref.WeakSet()


def clear_memos() -> None:
    """Forget every remembered decode (benchmarks of the cold path, tests)."""
    for m in list(_MEMOS):
        m.clear()


class Memo(Generic[V]):
    """Bytes → successful decode result, at most ``max_items`` entries and ``max_bytes`` of keys
    (keys over ``max_key`` bytes are not remembered); see the module docstring."""

    __slots__ = ("__weakref__", "_items", "_size", "max_bytes", "max_items", "max_key")

    def __init__(self, *, max_items: int = 512, max_bytes: int = 1 << 20, max_key: int = 16 << 10) -> None:
        self._items: dict[bytes, V] = {}
        self._size = 0
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.max_key = max_key
        _MEMOS.add(self)

    def get(self, key: bytes) -> V | None:
        return self._items.get(key)

    def put(self, key: bytes, value: V) -> None:
        n = len(key)
        if n > self.max_key:
            return
        if self._size + n > self.max_bytes or len(self._items) >= self.max_items:
            self._items.clear()
            self._size = 0
        if key not in self._items:
            self._size += n
        self._items[key] = value

    def clear(self) -> None:
        self._items.clear()
        self._size = 0

    def __len__(self) -> int:
        return len(self._items)


def decode_cstring(raw: bytes, *, fmt: str, path: str, tag: int, offset: int) -> str:
    """Value of a string TLV (NUL included) as ``str``; a missing final NUL is a DecodeError."""
    if not raw or raw[-1] != 0:
        raise DecodeError("string is not NUL-terminated", fmt=fmt, path=path, tag=tag, offset=offset)
    return raw[:-1].decode("utf-8", errors="surrogateescape")


def encode_cstring(text: str, *, fmt: str, path: str, tag: int | None = None) -> bytes:
    """Inverse of :func:`decode_cstring`; the result fits a 16-bit TLV length."""
    try:
        raw = text.encode("utf-8", errors="surrogateescape") + b"\0"
    except UnicodeEncodeError:
        raise EncodeError(f"string {text!r} cannot be encoded", fmt=fmt, path=path, tag=tag) from None
    if len(raw) > 0xFFFF:
        raise EncodeError(f"string of {len(raw)} bytes exceeds 65535", fmt=fmt, path=path, tag=tag)
    return raw


def check_cstring(text: str, *, fmt: str, path: str, tag: int | None = None) -> None:
    """Raise EncodeError unless :func:`encode_cstring` would accept ``text`` (fast for ASCII)."""
    if text.isascii() and len(text) < 0xFFFF:
        return
    encode_cstring(text, fmt=fmt, path=path, tag=tag)


def printable(text: str) -> str:
    """``text`` with undecodable bytes and control characters escaped (for CLI output), each as Python
    writes it: ``\\x07``, ``\\u202e``, ``\\U000e0001`` (one reading only: ``\\x202e`` read as a space and
    ``2e``); a lone surrogate that is no undecodable byte (JSON's ``"\\ud800"``) as its code point,
    ``\\ud800`` (was: UnicodeEncodeError out of an error message), the text around it as without it
    (was: undecodable bytes forming UTF-8, ``"\\udcc3\\udca9"``, shown ``é`` alone but ``\\xc3\\xa9``
    beside such a surrogate). ``\\x80`` to ``\\xff`` are undecodable bytes only: a character of those code
    points (a C1 control, U+0080 to U+009F; U+00AD) is written ``\\u0080`` (was ``\\x80`` for both, so
    what a file or server sent could not be told from the text: surrogateescape's bytes are 0x80 to 0xFF,
    so below 0x80 ``\\xNN`` is a character alone). Text decoded from bytes as Latin-1, each character a
    byte: :func:`printable_latin1`."""
    try:
        out = _bytes_decoded(text)
    except UnicodeEncodeError:
        pieces = _LONE_SURROGATE.split(text)  # text between them at even places, each surrogate at odd
        out = "".join(piece if at % 2 else _bytes_decoded(piece) for at, piece in enumerate(pieces))
    return "".join(c if c.isprintable() else _escaped(ord(c)) for c in out)


def _bytes_decoded(text: str) -> str:
    """``text`` with its undecodable bytes (surrogateescape's) read as UTF-8 again, ``\\xNN`` where they
    are none; UnicodeEncodeError for a lone surrogate that is no such byte."""
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")


#: a surrogate that is no undecodable byte (surrogateescape's are U+DC80..U+DCFF), kept by ``re.split``
_LONE_SURROGATE = re.compile("([\ud800-\udc7f\udd00-\udfff])")


def printable_latin1(text: str) -> str:
    """:func:`printable` of ``text`` decoded from bytes as Latin-1 (an HTTP head), where each character is
    the byte it was: one not printable is written as that byte, ``\\x8e`` (the server sent byte 0x8e;
    :func:`printable` writes the character U+008E ``\\u008e``), a printable one as itself (``é``, 0xe9)."""
    return "".join(f"\\x{ord(c):02x}" if ord(c) <= 0xFF and not c.isprintable() else printable(c)
                   for c in text)


def _escaped(code: int) -> str:
    """A character as Python writes it, but ``\\xNN`` only below 0x80 (above, ``\\xNN`` is an undecodable
    byte: :func:`printable`)."""
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


#: Per dataclass: every field name, in field order, with its default (None when it has none).
_FIELDS: dict[type, dict[str, Any]] = {}


def _field_defaults(cls: type) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:  # pragma: no cover - not for such classes
            raise TypeError(f"{cls.__name__}.{f.name} has a default factory")
        state[f.name] = None if f.default is dataclasses.MISSING else f.default
    return state


def unchecked(cls: type[D], **values: Any) -> D:
    """``cls(**values)`` without ``__post_init__`` (perf only): the same fields, in field order.

    Only for values whose every ``__post_init__`` check holds by construction (the caller says
    why); every field without a default must be given. ``cls`` is a dataclass without default
    factories; a frozen one stays frozen (its fields are set in the instance dictionary).
    """
    defaults = _FIELDS.get(cls)
    if defaults is None:
        defaults = _FIELDS[cls] = _field_defaults(cls)
    obj: D = object.__new__(cls)
    state = obj.__dict__
    state.update(defaults)  # every field, in field order
    state.update(values)  # existing keys keep their place
    return obj
