"""One Reader/Writer pair for every binary format (design §3.3).

* All integers are big-endian (spec §0).
* A *block* is a length-scoped sub-reader: a nested length that overruns its parent is a
  :class:`DecodeError`, and so are bytes left over inside a block that the caller says
  must be consumed.
* Every read names its field, so errors say where: format, field path, tag and offset.
* Memory stays bounded: a read never allocates more than the bytes actually present.
* Every decoder takes bytes-like input through :func:`as_bytes`: bytes, bytearray or memoryview,
  sized by its bytes (a memoryview's ``len`` counts items: the rows of a 2-D view, the words of a
  ``'Q'`` view), checked against the decoder's limit *before* any copy; anything else is a
  DecodeError naming its type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from phoneemu.errors import DecodeError, EncodeError, SizeLimitError

__all__ = ["Reader", "Writer", "as_bytes"]


def as_bytes(data: object, *, fmt: str, limit: int | None = None,
             too_large: Callable[[int], DecodeError] | None = None) -> bytes:
    """``data`` as ``bytes`` (module rules): its size in bytes checked against ``limit`` before any
    copy (``too_large(size)``, by default SizeLimitError "N bytes exceeds the L-byte limit" at offset
    L); bytes are returned as they are, a view is copied in its logical order. Anything but bytes,
    bytearray or memoryview is a DecodeError naming its type."""
    if isinstance(data, memoryview):
        size = _view_size(data, fmt)
    elif isinstance(data, (bytes, bytearray)):
        size = len(data)
    else:
        raise DecodeError(f"expected bytes, got {type(data).__name__}", fmt=fmt)
    if limit is not None and size > limit:
        if too_large is not None:
            raise too_large(size)
        raise SizeLimitError(f"{size} bytes exceeds the {limit}-byte limit", fmt=fmt, offset=limit)
    if type(data) is bytes:
        return data
    return data.tobytes() if isinstance(data, memoryview) else bytes(data)


def _view_size(view: memoryview, fmt: str) -> int:
    """A view's size in bytes: ``nbytes``, never ``len`` (which counts items, module rules)."""
    try:
        return view.nbytes
    except ValueError:  # released
        raise DecodeError("expected bytes, got a released memoryview", fmt=fmt) from None


class Reader:
    """Cursor over an immutable byte string with absolute offsets and a scoped end."""

    __slots__ = ("_data", "_end", "_pos", "fmt", "path")

    def __init__(
        self,
        data: bytes,
        *,
        fmt: str,
        start: int = 0,
        end: int | None = None,
        path: str = "",
    ) -> None:
        self._data = data
        self._pos = start
        self._end = len(data) if end is None else end
        self.fmt = fmt
        self.path = path

    # --- position -------------------------------------------------------------
    @property
    def offset(self) -> int:
        """Absolute offset of the next byte."""
        return self._pos

    @property
    def end(self) -> int:
        return self._end

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    @property
    def at_end(self) -> bool:
        return self._pos >= self._end

    @property
    def data(self) -> bytes:
        """The whole underlying buffer (offsets are absolute into it)."""
        return self._data

    def seek(self, offset: int) -> None:
        if not 0 <= offset <= self._end:
            raise self.error(f"seek to {offset} outside block ending at {self._end}")
        self._pos = offset

    # --- errors ---------------------------------------------------------------
    def error(
        self,
        message: str,
        *,
        field: str | None = None,
        tag: int | None = None,
        offset: int | None = None,
    ) -> DecodeError:
        """Build a DecodeError located at the cursor (or ``offset``) and ``field``."""
        path = self.path
        if field:
            path = f"{path}.{field}" if path else field
        return DecodeError(
            message,
            fmt=self.fmt,
            offset=self._pos if offset is None else offset,
            path=path or None,
            tag=tag,
        )

    def _need(self, n: int, field: str, tag: int | None) -> None:
        if n > self._end - self._pos:
            raise self.error(
                f"need {n} byte(s), only {self._end - self._pos} remain", field=field, tag=tag
            )

    # --- scalars --------------------------------------------------------------
    def u8(self, field: str, *, tag: int | None = None) -> int:
        self._need(1, field, tag)
        v = self._data[self._pos]
        self._pos += 1
        return v

    def u16(self, field: str, *, tag: int | None = None) -> int:
        self._need(2, field, tag)
        p = self._pos
        self._pos = p + 2
        return (self._data[p] << 8) | self._data[p + 1]

    def u32(self, field: str, *, tag: int | None = None) -> int:
        self._need(4, field, tag)
        p = self._pos
        self._pos = p + 4
        return int.from_bytes(self._data[p : p + 4], "big")

    def u32le(self, field: str, *, tag: int | None = None) -> int:
        self._need(4, field, tag)
        p = self._pos
        self._pos = p + 4
        return int.from_bytes(self._data[p : p + 4], "little")

    def take(self, n: int, field: str, *, tag: int | None = None) -> bytes:
        """Return the next ``n`` bytes; a length larger than what remains is a DecodeError."""
        if n < 0:
            raise self.error(f"negative length {n}", field=field, tag=tag)
        self._need(n, field, tag)
        p = self._pos
        self._pos = p + n
        return self._data[p : p + n]

    def rest(self) -> bytes:
        p = self._pos
        self._pos = self._end
        return self._data[p : self._end]

    def cstring(self, n: int, field: str, *, tag: int | None = None) -> str:
        """A NUL-terminated string of ``n`` bytes including the NUL (spec §A.7).

        Decoded as UTF-8 with replacement (names are informational); a missing NUL is an error.
        """
        start = self._pos
        raw = self.take(n, field, tag=tag)
        if not raw or raw[-1] != 0:
            raise self.error("string is not NUL-terminated", field=field, tag=tag, offset=start)
        return raw[:-1].decode("utf-8", errors="replace")

    # --- blocks ---------------------------------------------------------------
    def sub(self, n: int, field: str, *, tag: int | None = None) -> Reader:
        """Length-scoped reader over the next ``n`` bytes; the parent skips past them."""
        if n < 0:
            raise self.error(f"negative length {n}", field=field, tag=tag)
        if n > self._end - self._pos:
            raise self.error(
                f"length {n} exceeds remaining {self._end - self._pos}", field=field, tag=tag
            )
        path = f"{self.path}.{field}" if self.path else field
        child = Reader(self._data, fmt=self.fmt, start=self._pos, end=self._pos + n, path=path)
        self._pos += n
        return child

    def expect_end(self, field: str = "", *, tag: int | None = None) -> None:
        """Leftover bytes inside a block are a DecodeError."""
        if self._pos != self._end:
            raise self.error(
                f"{self._end - self._pos} unexpected byte(s) left in block", field=field, tag=tag
            )

    def peek_u8(self) -> int | None:
        return self._data[self._pos] if self._pos < self._end else None


class Writer:
    """Append-only big-endian encoder with back-patched length blocks."""

    __slots__ = ("_buf", "fmt")

    def __init__(self, *, fmt: str = "wire") -> None:
        self._buf = bytearray()
        self.fmt = fmt

    def __len__(self) -> int:
        return len(self._buf)

    def _range(self, v: int, bits: int, field: str) -> None:
        if not 0 <= v < (1 << bits):
            raise EncodeError(f"value {v} does not fit in {bits} bits", fmt=self.fmt, path=field)

    def u8(self, v: int, field: str = "u8") -> None:
        self._range(v, 8, field)
        self._buf.append(v)

    def u16(self, v: int, field: str = "u16") -> None:
        self._range(v, 16, field)
        self._buf += v.to_bytes(2, "big")

    def u32(self, v: int, field: str = "u32") -> None:
        self._range(v, 32, field)
        self._buf += v.to_bytes(4, "big")

    def u32le(self, v: int, field: str = "u32le") -> None:
        self._range(v, 32, field)
        self._buf += v.to_bytes(4, "little")

    def raw(self, b: bytes) -> None:
        self._buf += b

    def tlv(self, tag: int, value: bytes, field: str = "tlv") -> None:
        """1-byte tag, uint16 length, value (spec §0)."""
        if len(value) > 0xFFFF:
            raise EncodeError(
                f"value of {len(value)} bytes exceeds the 65535-byte TLV limit",
                fmt=self.fmt, path=field, tag=tag,
            )
        self._buf.append(tag)
        self._buf += len(value).to_bytes(2, "big")
        self._buf += value

    @contextmanager
    def block16(self, tag: int | None = None, field: str = "block") -> Iterator[None]:
        """Write ``[tag] u16-length`` and patch the length with the size of what the body wrote."""
        if tag is not None:
            self._buf.append(tag)
        at = len(self._buf)
        self._buf += b"\0\0"
        yield
        size = len(self._buf) - at - 2
        if size > 0xFFFF:
            raise EncodeError(f"block of {size} bytes exceeds 65535", fmt=self.fmt, path=field,
                              tag=tag)
        self._buf[at : at + 2] = size.to_bytes(2, "big")

    def patch_u16(self, at: int, v: int, field: str = "u16") -> None:
        self._range(v, 16, field)
        self._buf[at : at + 2] = v.to_bytes(2, "big")

    def getvalue(self) -> bytes:
        return bytes(self._buf)
