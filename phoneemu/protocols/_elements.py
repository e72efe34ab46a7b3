"""Element TLVs and bounded frame buffering shared by TVS (spec §E.2/§E.4) and CAPF (§F.2/§F.4).

Rules:

* An element is ``tag (1 byte) | length (uint16 BE) | value`` (spec §0); a body is a sequence of
  elements that must exactly fill the length given by the header. An element whose length overruns
  the body is a DecodeError naming the element index, tag and offset.
* Elements keep their order and unknown tags survive decode → encode unchanged (design §3.4).
* A frame is ``header | body`` where the header carries the body length as uint16, so a frame is at
  most ``header_size + 65535`` bytes. :class:`FrameBuffer` keeps at most one partial frame: memory is
  bounded by that figure whatever the peer sends.
* Input is bytes-like (:func:`phoneemu.wire.as_bytes`): a memoryview is framed by its bytes, never
  its items (was: a 2-D view's one row taken as one byte); one frame given to ``decode`` longer than
  the largest frame is a SizeLimitError before any copy; anything else is a DecodeError naming its type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from phoneemu.errors import DecodeError, EncodeError, ProtocolError, SizeLimitError
from phoneemu.wire import Reader, Writer, as_bytes

__all__ = ["MAX_BODY", "Element", "FrameBuffer", "decode_elements", "encode_elements", "find", "find_all",
           "one_frame"]

MAX_BODY = 0xFFFF

M = TypeVar("M")


@dataclass(frozen=True, kw_only=True)
class Element:
    """One element TLV: ``tag`` 0..255 and a raw ``value`` of at most 65535 bytes."""

    tag: int
    value: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.tag <= 0xFF:
            raise EncodeError(f"element tag {self.tag} does not fit in one byte", path="element.tag")
        if len(self.value) > MAX_BODY:
            raise EncodeError(f"element value of {len(self.value)} bytes exceeds 65535",
                              path="element.value", tag=self.tag)


def decode_elements(r: Reader, *, names: Mapping[int, str]) -> tuple[Element, ...]:
    """Read elements until the end of ``r`` (a length-scoped body reader)."""
    out: list[Element] = []
    index = 0
    while not r.at_end:
        start = r.offset
        tag = r.u8(f"element[{index}].tag")
        name = names.get(tag, f"element[{index}]")
        length = r.u16(f"{name}.length", tag=tag)
        if length > r.remaining:
            raise DecodeError(f"length {length} exceeds remaining {r.remaining} of the body",
                              fmt=r.fmt, offset=start, path=_join(r.path, f"{name}.length"), tag=tag)
        out.append(Element(tag=tag, value=r.take(length, f"{name}.value", tag=tag)))
        index += 1
    return tuple(out)


def encode_elements(w: Writer, elements: Iterable[Element]) -> None:
    for e in elements:
        w.tlv(e.tag, e.value, field=f"element (tag {e.tag})")


def find(elements: Iterable[Element], tag: int) -> bytes | None:
    """Value of the first element with ``tag``, or None."""
    for e in elements:
        if e.tag == tag:
            return e.value
    return None


def find_all(elements: Iterable[Element], tag: int) -> list[bytes]:
    return [e.value for e in elements if e.tag == tag]


def one_frame(data: bytes, *, fmt: str, header_size: int) -> bytes:
    """``data`` as the bytes of one whole frame (module rules): bytes-like, at most ``header_size`` +
    65535 bytes (SizeLimitError, checked before any copy)."""
    limit = header_size + MAX_BODY
    return as_bytes(data, fmt=fmt, limit=limit, too_large=lambda size: SizeLimitError(
        f"{size} bytes exceeds the largest frame, {limit} bytes (header {header_size} + body 65535)",
        fmt=fmt, offset=limit))


def open_frame(data: bytes, path: str, *, fmt: str, header_size: int,
               check_header: Callable[[bytes, int, str], None]) -> Reader:
    """A Reader over one whole frame, its fixed header already checked (truncation, then
    ``check_header``); the caller reads the header fields it needs, then :func:`frame_body`."""
    r = Reader(data, fmt=fmt, path=path)
    if len(data) < header_size:
        raise r.error(f"truncated header: {len(data)} byte(s), need {header_size}", field="header",
                      offset=0)
    check_header(data[:header_size], 0, _join(path, "header"))
    return r


def frame_body(r: Reader, *, names: Mapping[int, str]) -> tuple[Element, ...]:
    """Read the uint16 body length that ends every header, check it covers exactly the rest of the
    frame, and decode the body's elements."""
    at = r.offset
    length = r.u16("header.body_length")
    if length != r.remaining:
        raise r.error(f"body length {length} but {r.remaining} byte(s) follow the header",
                      field="header.body_length", offset=at)
    return decode_elements(r.sub(length, "body"), names=names)


def _join(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


class FrameBuffer(Generic[M]):
    """Reassemble frames from a byte stream with a bounded buffer.

    ``header_size``: fixed header length; ``body_length_at``: offset of the uint16 body length in
    the header; ``check_header(header, stream_offset)`` raises ProtocolError as soon as a header
    byte is wrong (so garbage is refused without waiting for a full frame); ``decode(frame, path)``
    turns one complete frame into a message.
    """

    def __init__(
        self,
        *,
        fmt: str,
        header_size: int,
        body_length_at: int,
        check_header: Callable[[bytes, int], None],
        decode: Callable[[bytes, str], M],
    ) -> None:
        self._fmt = fmt
        self._header_size = header_size
        self._len_at = body_length_at
        self._check = check_header
        self._decode = decode
        self._buf = bytearray()
        self._consumed = 0
        self._frames = 0
        self._failed: ProtocolError | DecodeError | None = None

    @property
    def max_buffered(self) -> int:
        """Upper bound of bytes kept between calls: one partial frame."""
        return self._header_size + MAX_BODY

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def stream_offset(self) -> int:
        """Bytes of the stream consumed by complete frames so far."""
        return self._consumed

    def feed(self, data: bytes) -> list[M]:
        """Add ``data``; return every message now complete (possibly none).

        Bad bytes after one or more complete frames of the same ``data`` do not lose those frames:
        they are returned, and the error is kept in :attr:`error` (the caller answers the frames,
        then reports it) and raised by the next ``feed`` or ``eof``. Bad bytes with no complete frame
        before them raise at once. After an error the decoder is poisoned: the stream cannot be
        resynchronised, so every later call raises the same error.
        """
        if self._failed is not None:
            raise self._failed
        out: list[M] = []
        view = memoryview(as_bytes(data, fmt=self._fmt))  # bytes, not items (module rules)
        pos = 0
        try:
            while True:
                need_header = self._header_size - len(self._buf)
                if need_header > 0:
                    chunk = view[pos : pos + need_header]
                    self._buf += chunk
                    pos += len(chunk)
                    if len(self._buf) < self._header_size:
                        if self._buf:
                            self._check(bytes(self._buf), self._consumed)
                        return out
                    self._check(bytes(self._buf), self._consumed)
                body_len = int.from_bytes(self._buf[self._len_at : self._len_at + 2], "big")
                total = self._header_size + body_len
                need = total - len(self._buf)
                chunk = view[pos : pos + need]
                self._buf += chunk
                pos += len(chunk)
                if len(self._buf) < total:
                    return out
                frame = bytes(self._buf)
                self._buf.clear()
                out.append(self._decode(frame, f"frame[{self._frames}]@{self._consumed}"))
                self._consumed += total
                self._frames += 1
        except DecodeError as exc:
            self._failed = exc
            self._buf.clear()
            if out:
                return out  # the frames before the garbage still count; the error waits in .error
            raise

    @property
    def error(self) -> ProtocolError | DecodeError | None:
        """The error that poisoned the stream (after frames :meth:`feed` still returned), else None."""
        return self._failed

    def eof(self) -> None:
        """The stream ended: a partial frame left in the buffer is a DecodeError (truncated); an
        error held back by :meth:`feed` is raised now."""
        if self._failed is not None:
            raise self._failed
        if self._buf:
            raise DecodeError(
                f"stream ended inside a frame ({len(self._buf)} byte(s) of a frame buffered)",
                fmt=self._fmt, offset=self._consumed, path=f"frame[{self._frames}]",
            )
