"""Small helpers shared by the TLV formats (spec §0, §A.7).

* Strings are NUL-terminated and the length counts the NUL (spec §A.7).
* Bytes that are not UTF-8 are kept with ``surrogateescape`` so that a parse/build round trip
  reproduces them exactly; :func:`printable` renders such strings safely for humans.
"""

from __future__ import annotations

from phoneemu.errors import DecodeError, EncodeError

__all__ = ["check_cstring", "decode_cstring", "encode_cstring", "printable"]


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
    """``text`` with undecodable bytes and control characters escaped (for CLI output)."""
    out = text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in out)
