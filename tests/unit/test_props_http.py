"""Hypothesis properties of the HTTP client's response reader (:func:`phoneemu.net.http.read_response`).

* a well-formed response (status 200, random header fields in any case, Content-Length, chunked with
  random chunk sizes, extensions and trailers, or read to EOF; CRLF or bare-LF line ends; interim 1xx
  responses before it) gives back exactly its body;
* random bytes, and random mutations of well-formed responses, raise only TransportError, within a
  bounded time, and never give a body above ``max_size``;
* a response fed in pieces cut at any byte boundaries reads as it does fed whole.

``PHONEEMU_PROP_EXAMPLES=N`` runs each property with N random (not derandomized) examples: the long hunt.
"""

from __future__ import annotations

import asyncio
import functools
import os
import string
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from phoneemu.errors import TransportError
from phoneemu.net.http import read_response

_HUNT = int(os.environ.get("PHONEEMU_PROP_EXAMPLES", "0"))


def props(n: int) -> settings:
    return settings(max_examples=_HUNT or n, deadline=None, derandomize=not _HUNT,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


MAX_HEADER = 4096
LIMIT = 4096  # the reader's line limit (http_get opens its connection with limit=max_header)

Outcome = tuple[str, Any]


@dataclass(frozen=True)
class Built:
    data: bytes
    body: bytes


async def _read(pieces: list[bytes], *, max_size: int, max_header: int = MAX_HEADER) -> Outcome:
    reader = asyncio.StreamReader(limit=LIMIT)

    async def feeder() -> None:
        for p in pieces:
            reader.feed_data(p)
            await asyncio.sleep(0)
        reader.feed_eof()

    task = asyncio.create_task(feeder())
    try:
        status, fields, body = await asyncio.wait_for(
            read_response(reader, "f.bin", max_size=max_size, max_header=max_header), 5.0)
        return "ok", (status, fields, body)
    except TransportError as exc:
        assert exc.path == "f.bin" and exc.kind in ("protocol", "too-large"), exc
        return "error", (exc.kind, str(exc))
    finally:
        await task


def read(data: bytes | list[bytes], *, max_size: int = 1 << 16, max_header: int = MAX_HEADER) -> Outcome:
    pieces = [data] if isinstance(data, bytes) else data
    return asyncio.run(_read([p for p in pieces if p], max_size=max_size, max_header=max_header))


# --- well-formed responses -------------------------------------------------------------------------

TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
VCHAR = "".join(chr(c) for c in range(0x21, 0x7F))
_FRAMING = {"content-length", "transfer-encoding", "content-encoding"}
FIELD_NAME_MAX = 12
# a random field name is never a framing one (so no filter is needed): each framing name is longer
assert min(map(len, _FRAMING)) > FIELD_NAME_MAX, _FRAMING

# Strategies are built once, here, and drawn from by the composites below (building them at every draw
# was a good part of this module's CPU time).
field_names = st.text(TCHAR, min_size=1, max_size=FIELD_NAME_MAX)
field_values = st.builds(lambda a, b: (a + b).strip(" \t"), st.text(VCHAR + " \t", max_size=20),
                         st.text(VCHAR, max_size=3))
eols = st.sampled_from(["\r\n", "\n"])
head_fields = st.lists(st.tuples(field_names, field_values), max_size=6)
trailer_fields = st.lists(st.tuples(field_names, field_values), max_size=3)
field_gaps = st.sampled_from(["", " ", "  ", "\t"])
chunk_size_forms = st.sampled_from(["{:x}", "{:X}", "0{:x}", "00{:X}"])
chunk_extensions = st.sampled_from(["", ";a=b", " ;name", ';x="q;uo\\"te"', "\t; e = 1"])
last_chunks = st.sampled_from(["0", "000", "0;end=1"])
bodies = st.binary(max_size=300)
interim_counts = st.integers(0, 3)
interim_codes = st.sampled_from([100, 102, 103, 150, 199])  # not 101: that one is final
versions = st.sampled_from(["HTTP/1.1", "HTTP/1.0"])
framing_modes = st.sampled_from(["length", "chunked", "eof"])
reasons = st.sampled_from(["OK", "", "Fine thanks"])
mutation_counts = st.integers(1, 4)
mutation_ops = st.sampled_from(["flip", "set", "delete", "insert", "dup", "cut"])
bits = st.integers(0, 7)
set_bytes = st.sampled_from(b"\r\n\0 \t:;0fF\x80\xff-+")
delete_lengths = st.integers(1, 8)
inserted = st.one_of(st.binary(min_size=1, max_size=8),
                     st.sampled_from([b"\r\n", b"\n", b"\r\n\r\n", b"ffffffff\r\n", b"Content-Length: 3\r\n",
                                      b"Transfer-Encoding: chunked\r\n", b" folded\r\n", b"\0", b"\r"]))
dup_lengths = st.integers(1, 40)


@functools.cache
def any_case(name: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda ups: "".join(c.upper() if u else c.lower() for c, u in zip(name, ups, strict=True)))


@st.composite
def heads(draw: st.DrawFn, start: str, framing: list[tuple[str, str]]) -> str:
    fields = draw(head_fields)
    fields += framing
    fields = draw(st.permutations(fields))
    out = start + draw(eols)
    for k, v in fields:
        out += f"{k}:{draw(field_gaps)}{v}{draw(eols)}"
    return out + draw(eols)


@st.composite
def chunked(draw: st.DrawFn, body: bytes) -> bytes:
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=5)))
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    out = b""
    pos = 0
    for size in [s for s in sizes if s]:
        digits = draw(chunk_size_forms).format(size)
        ext = draw(chunk_extensions)
        out += f"{digits}{ext}{draw(eols)}".encode() + body[pos:pos + size] + draw(eols).encode()
        pos += size
    last = draw(last_chunks)
    out += f"{last}{draw(eols)}".encode()
    for k, v in draw(trailer_fields):
        out += f"{k}: {v}{draw(eols)}".encode()
    return out + draw(eols).encode()


@st.composite
def responses(draw: st.DrawFn) -> Built:
    body = draw(bodies)
    out = b""
    for _ in range(draw(interim_counts)):  # interim responses
        code = draw(interim_codes)
        version = draw(versions)
        out += draw(heads(f"{version} {code} Interim", [])).encode("latin-1")
    mode = draw(framing_modes)
    version = "HTTP/1.1" if mode == "chunked" else draw(versions)
    reason = draw(reasons)
    start = f"{version} 200 {reason}" if reason or draw(st.booleans()) else f"{version} 200"
    if mode == "length":
        framing = [(draw(any_case("Content-Length")), str(len(body)))]
        if draw(st.booleans()):
            framing.append((draw(any_case("content-length")), f"{len(body)}, {len(body)}"))
        tail = body
    elif mode == "chunked":
        framing = [(draw(any_case("Transfer-Encoding")), draw(any_case("chunked")))]
        tail = draw(chunked(body))
    else:
        framing = []
        tail = body
    if draw(st.booleans()):
        framing.append((draw(any_case("Content-Encoding")), "identity"))
    out += draw(heads(start, framing)).encode("latin-1") + tail
    return Built(out, body)


well_formed = responses()


@props(150)
@given(well_formed)
def test_a_well_formed_response_gives_back_exactly_its_body(r: Built) -> None:
    outcome = read(r.data)
    assert outcome[0] == "ok", outcome
    status, _fields, body = outcome[1]
    assert status == 200 and body == r.body


# --- random and mutated input ----------------------------------------------------------------------

@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(well_formed).data)
    for _ in range(draw(mutation_counts)):
        op = draw(mutation_ops)
        at = draw(st.integers(0, len(data)))
        if op == "flip" and at < len(data):
            data[at] ^= 1 << draw(bits)
        elif op == "set" and at < len(data):
            data[at] = draw(set_bytes)
        elif op == "delete":
            del data[at:at + draw(delete_lengths)]
        elif op == "insert":
            data[at:at] = draw(inserted)
        elif op == "dup":
            n = draw(dup_lengths)
            data[at:at] = data[at:at + n]
        elif op == "cut":
            del data[at:]
    return bytes(data)


def _check_hostile(data: bytes, max_size: int) -> Outcome:
    outcome = read(data, max_size=max_size)
    if outcome[0] == "ok":
        _status, fields, body = outcome[1]
        assert len(body) <= max_size
        # module rules: a field with a CR or NUL in it is refused, so is Transfer-Encoding with Content-Length
        assert not any(c in v for vs in fields.values() for v in vs for c in "\r\0"), fields
        assert not ("transfer-encoding" in fields and "content-length" in fields), fields
    return outcome


@props(200)
@given(st.binary(max_size=400), st.integers(0, 64))
@example(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\n", 10)
@example(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", 10)
# bugs found: an obs-fold line carried a NUL or CR into a field value; an empty Transfer-Encoding beside
# Content-Length (or in an HTTP/1.0 response) was taken as no Transfer-Encoding at all
@example(b"HTTP/1.1 200 OK\r\nX: a\r\n b\0c\r\nContent-Length: 1\r\n\r\nz", 10)
@example(b"HTTP/1.1 200 OK\r\nX: a\r\n b\rc\r\nContent-Length: 1\r\n\r\nz", 10)
@example(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\nContent-Length: 1\r\n\r\nz", 10)
def test_random_bytes_raise_only_transport_error(data: bytes, max_size: int) -> None:
    _check_hostile(data, max_size)


@props(300)
@given(mutated(), st.integers(0, 400))
def test_mutated_responses_raise_only_transport_error(data: bytes, max_size: int) -> None:
    _check_hostile(data, max_size)


@props(100)
@given(st.binary(max_size=200))
def test_random_bytes_after_a_status_line_raise_only_transport_error(rest: bytes) -> None:
    _check_hostile(b"HTTP/1.1 200 OK\r\n" + rest, 100)


# --- pieces ---------------------------------------------------------------------------------------

@st.composite
def split(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=12))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@props(150)
@given(st.one_of(well_formed.map(lambda r: r.data), mutated()), st.data())
def test_a_response_fed_in_pieces_reads_as_fed_whole(data: bytes, draw: st.DataObject) -> None:
    pieces = draw.draw(split(data))
    assert read(pieces, max_size=200) == read(data, max_size=200)


def test_an_empty_transfer_encoding_is_framing_asked_for_not_none() -> None:
    """Found by the properties: ``Transfer-Encoding: ,`` (no coding) beside Content-Length, or in an
    HTTP/1.0 response, was read as if there were no Transfer-Encoding field (module rules refuse both)."""
    for data in (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\nContent-Length: 1\r\n\r\nz",
                 b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding:\r\n\r\nz",
                 b"HTTP/1.0 200 OK\r\nTransfer-Encoding: ,\r\n\r\nzz"):
        assert read(data)[0] == "error", data


def test_a_folded_line_may_not_carry_a_cr_or_nul_into_a_field() -> None:
    for bad in (b"\0", b"\r"):
        kind, (_k, text) = read(b"HTTP/1.1 200 OK\r\nX: a\r\n b" + bad + b"c\r\nContent-Length: 0\r\n\r\n")
        assert kind == "error" and "CR or NUL" in str(text)
