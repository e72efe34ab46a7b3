"""Review R5 of the HTTP 6970 download bounds (2ec3154; :mod:`phoneemu.net.http` rules, our convention):

* a chunked body's framing (a chunk's CRLF, its size line) is progress: a server sending each chunk's size
  ahead of its data, every gap inside the wait, was cut "no data for S s";
* a file come whole just before the cap is kept: the cap no longer applies once the body is complete (was:
  a cap falling while the connection closed threw the file away, and it was asked of TFTP);
* ``boot``'s note on an HTTP that answered none of its requests names the cap when ``--fetch-max-time``
  cut them before any response (shorter than ``--timeout``; was: told a wrong ``--http-port``).

Real loopback sockets; no elapsed time asserted.
"""

from __future__ import annotations

import asyncio

import pytest

from phoneemu.net.http import HttpTimeoutError, http_get
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from tests.real_cluster_helpers import HttpHandler, fetch_watched, never_answering, serve_http

HOST = "127.0.0.1"
NAME = "ITLSEP0A00000000E5.tlv"
MAC = "0A00000000E5"
GAP_S = 0.3  # between two sends of a server: half the wait below
WAIT_S = 0.6  # the client's wait (timeout)
HELD_S = 5.0  # the longest a server holds a connection (a test gone wrong ends)



def _sending(*parts: bytes) -> HttpHandler:
    """A server that answers a request head with ``parts``, :data:`GAP_S` apart, then closes."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            for n, part in enumerate(parts):
                if n:
                    await asyncio.sleep(GAP_S)
                writer.write(part)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
    return handle


def test_http_review_r5_a_chunked_bodys_framing_coming_is_progress() -> None:
    """Data, then its CRLF, then the next chunk's size, then its data: each a gap apart (inside the wait),
    data to data three gaps (longer than it)."""
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    handle = _sending(head + b"5\r\nhello", b"\r\n", b"5\r\n", b"world\r\n0\r\n\r\n")

    async def run(port: int) -> bytes:
        return await http_get(HOST, port, NAME, timeout=WAIT_S, max_time=HELD_S)

    assert asyncio.run(serve_http(handle, run)) == b"helloworld"


def test_http_review_r5_a_file_come_whole_before_the_cap_is_kept_while_its_connection_closes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The close made slow (as a loaded event loop makes it; the race window held open): the body came at
    once, the cap falls during the close."""
    closing = asyncio.StreamWriter.wait_closed

    async def slow_close(self: asyncio.StreamWriter) -> None:
        await asyncio.sleep(GAP_S * 2)
        await closing(self)

    monkeypatch.setattr(asyncio.StreamWriter, "wait_closed", slow_close)
    handle = _sending(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nfile")

    async def run(port: int) -> bytes:
        return await http_get(HOST, port, NAME, timeout=HELD_S, max_time=GAP_S)

    assert asyncio.run(serve_http(handle, run)) == b"file"


def test_http_review_r5_boots_note_names_the_cap_that_cut_requests_before_any_response() -> None:
    phone = Phone(mac=MAC, profile=get_profile("cp-8861"), flash=None, clock=lambda: 1_780_000_000,
                  fetch_timeout=HELD_S, fetch_retries=0, http_timeout=HELD_S, fetch_max_time=GAP_S)
    files = {NAME: b"itl", f"SEP{MAC}.cnf.xml": b"<device/>"}

    note, fell_back = asyncio.run(serve_http(never_answering, lambda port: fetch_watched(phone, files, port)))
    assert isinstance(fell_back, HttpTimeoutError) and fell_back.capped and not fell_back.responded
    assert note is not None and note.endswith(
        " answered none of 2 request(s) in time: --fetch-max-time cut 2 request(s) before any response, so "
        "each file was asked of TFTP after it: the cap counts the connection and the wait for a response "
        "too (it came before --timeout did): a longer --fetch-max-time S"), note
    assert "--http-port" not in note
