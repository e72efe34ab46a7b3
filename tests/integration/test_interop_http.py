"""Interoperability of the phone's HTTP 6970 client with servers unlike our lab's (spec §H.1): what real
clusters, proxies and hostile servers send, scripted on loopback. Each answer is a body or a named
TransportError, in bounded time (phoneemu.net.http module docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from phoneemu.errors import TransportError
from phoneemu.net.fetch import HttpFetcher, HttpThenTftpFetcher, TftpFetcher
from phoneemu.net.http import http_get
from phoneemu.net.tftp import TftpServer
from tests.helpers import run_within
from tests.http_server_helpers import scripted_http

HOST = "127.0.0.1"
run = run_within(5)


def scripted(response: bytes, *, close: bool = True, trickle: float = 0.0,
             requests: list[bytes] | None = None) -> contextlib.AbstractAsyncContextManager[int]:
    """A server answering each request head with ``response`` (one byte per ``trickle`` seconds when
    set, at most 100), then closing unless ``close`` is False (it then waits for the client to go, 3 s at
    most); its port (:func:`tests.http_server_helpers.scripted_http`)."""
    return scripted_http(response, hold=0.0 if close else 3.0, drip=trickle, drip_bytes=100,
                         requests=requests)


OK = b"HTTP/1.1 200 OK\r\n"


def short(value: object) -> str:
    """A test id of a few characters, not a 20 kB response."""
    return repr(value)[:48] if isinstance(value, bytes) else str(value)


@pytest.mark.parametrize(("response", "body"), [
    # chunked with extensions (quoted too) and trailer fields
    (OK + b"Transfer-Encoding: chunked\r\n\r\n3;name=\"a;b\"\r\nabc\r\n2 ; x\r\nde\r\n0;end\r\n"
          b"Checksum: 1\r\nX-T: 2\r\n\r\n", b"abcde"),
    # no Content-Length: the body ends with the connection (Connection: close)
    (OK + b"Connection: close\r\n\r\nto-the-end", b"to-the-end"),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold", b"old"),
    (b"HTTP/1.0 200 OK\r\n\r\nold-eof", b"old-eof"),
    # obs-fold joined, lower-case names, a status line without a reason phrase
    (OK + b"X-Folded: a\r\n\tb\r\ncontent-length: 2\r\n\r\nok", b"ok"),
    (b"HTTP/1.1 200\r\nCONTENT-LENGTH: 2\r\n\r\nok", b"ok"),
    # a body longer than Content-Length: Content-Length bytes, the rest ignored
    (OK + b"Content-Length: 2\r\n\r\nokSMUGGLED", b"ok"),
    # interim responses before the final one
    (b"HTTP/1.1 100 Continue\r\n\r\n" + OK + b"Content-Length: 2\r\n\r\nok", b"ok"),
    (OK + b"Content-Length: 2\r\nContent-Encoding: identity\r\n\r\nok", b"ok"),
], ids=short)
def test_legitimate_server_variations_are_read(response: bytes, body: bytes) -> None:
    async def main() -> None:
        async with scripted(response) as port:
            assert await http_get(HOST, port, "f", timeout=2) == body
    run(main())


@pytest.mark.parametrize("close", [True, False])
def test_a_head_with_bare_lf_line_ends_is_read(close: bool) -> None:
    """RFC 9112 §2.2: a recipient may take a bare LF as a line end (our server does). The old client
    looked for CRLF CRLF only: "connection closed before response head" for a head that came whole, or
    a time-out when the server kept the connection open."""
    async def main() -> None:
        for response in (b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
                         b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\n\n"):
            async with scripted(response, close=close) as port:
                assert await http_get(HOST, port, "f", timeout=1) == b"ok"
    run(main())


@pytest.mark.parametrize(("response", "words"), [
    # request smuggling / response splitting shapes (RFC 9112 §6.3)
    (OK + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
     "both Transfer-Encoding and Content-Length"),
    (OK + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n2\r\nok\r\n0\r\n\r\n",
     "both Transfer-Encoding and Content-Length"),
    (OK + b"Content-Length: 2\r\nContent-Length: 4\r\n\r\nokok", "Content-Length values differ"),
    (OK + b"Content-Length: 2, 4\r\n\r\nokok", "Content-Length values differ"),
    (OK + b"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "unsupported transfer coding"),
    (b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "HTTP/1.0 response"),
    # a content coding the phone did not ask for (it asks for identity)
    (OK + b"Content-Encoding: gzip\r\nContent-Length: 4\r\n\r\n\x1f\x8b\x08\x00",
     "unrequested Content-Encoding 'gzip'"),
    # status line garbage
    (b"HTTP/1.1 000 Zero\r\n\r\n" + OK + b"Content-Length: 2\r\n\r\nok", "malformed status line"),
    (b"HTTP/1.1 999 Odd\r\nContent-Length: 2\r\n\r\nok", "malformed status line"),
    (b"HTTP/2 200\r\n\r\n", "malformed status line"),
    (b"\x00\xff garbage\r\n\r\n", "malformed status line"),
    (b"\x16\x03\x01\x00\x05hello", "begins 16, not 'HTTP/'"),
    (b"", "connection closed before the end of the response head"),
    # CR or NUL inside a field (RFC 9110 §5.5: reject or replace; a bare CR hides a second field)
    (OK + b"X-A: 1\rContent-Length: 9\r\nContent-Length: 2\r\n\r\nok", "CR or NUL"),
    (OK + b"X-A: 1\x00\r\nContent-Length: 2\r\n\r\nok", "CR or NUL"),
    # memory bounds: a huge head, an endless trailer section, an endless chunk-size line
    (OK + b"X-Big: " + b"a" * 20_000 + b"\r\n\r\nok", "response head above 8192 bytes"),
    (OK + b"X: y\r\n" * 3000 + b"\r\nok", "response head above 8192 bytes"),
    (OK + b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n" + b"T: x\r\n" * 3000 + b"\r\n",
     "trailers above 8192 bytes"),
    (OK + b"Transfer-Encoding: chunked\r\n\r\n2;" + b"e" * 20_000 + b"\r\nok\r\n0\r\n\r\n",
     "chunk-size or trailer line above"),
    (OK + b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n", "connection closed inside the chunked body"),
], ids=short)
def test_hostile_or_broken_answers_are_refused_with_a_reason(response: bytes, words: str) -> None:
    async def main() -> None:
        async with scripted(response) as port:
            with pytest.raises(TransportError) as ei:
                await http_get(HOST, port, "f", timeout=2)
            assert ei.value.kind == "protocol" and words in str(ei.value), ei.value
    run(main())


def test_the_request_asks_for_the_identity_coding() -> None:
    """Without Accept-Encoding any content coding is acceptable (RFC 9110 §12.5.3): the phone says it
    takes identity only, so a server that compresses is the one in the wrong."""
    async def main() -> None:
        seen: list[bytes] = []
        async with scripted(OK + b"Content-Length: 2\r\n\r\nok", requests=seen) as port:
            assert await http_get(HOST, port, "SEP001122334455.cnf.xml", timeout=2) == b"ok"
        assert seen and b"\r\nAccept-Encoding: identity\r\n" in seen[0], seen
        assert seen[0].startswith(b"GET /SEP001122334455.cnf.xml HTTP/1.1\r\nHost: 127.0.0.1:"), seen
    run(main())


def test_a_redirect_to_another_host_is_not_followed() -> None:
    async def main() -> None:
        hits: list[str] = []

        async def elsewhere(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            hits.append("connected")
            w.close()
        other = await asyncio.start_server(elsewhere, "127.0.0.2", 0)
        oport = other.sockets[0].getsockname()[1]
        try:
            for status in (b"301 Moved Permanently", b"302 Found", b"307 Temporary Redirect"):
                redirect = (b"HTTP/1.1 " + status + b"\r\nLocation: http://127.0.0.2:%d/f\r\n"
                            b"Content-Length: 0\r\n\r\n" % oport)
                async with scripted(redirect) as port:
                    with pytest.raises(TransportError) as ei:
                        await http_get(HOST, port, "f", timeout=2)
                assert ei.value.kind == "error" and ei.value.code == int(status[:3])
                assert f"redirect to 'http://127.0.0.2:{oport}/f', not followed" in str(ei.value), ei.value
            await asyncio.sleep(0.05)
            assert hits == []
        finally:
            other.close()
            await other.wait_closed()
    run(main())


@pytest.mark.parametrize(("response", "code"), [
    (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 503),
    (b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", 500),
    (b"HTTP/1.1 302 Found\r\nLocation: http://203.0.113.9/ITLFile.tlv\r\nContent-Length: 0\r\n\r\n", 302),
], ids=short)
def test_a_server_error_or_redirect_on_6970_falls_back_to_tftp(response: bytes, code: int) -> None:
    """Spec §H.1: HTTP first, "TFTP on failure". A 503 (our own lab server at its connection cap says
    it) or a redirect is no file; the old fetcher gave up instead of asking the configured TFTP server."""
    async def main() -> None:
        async with TftpServer({"ITLFile.tlv": b"itl"}, HOST, 0) as tftp, scripted(response) as port:
            f = HttpThenTftpFetcher(HttpFetcher(HOST, port, timeout=1.0), TftpFetcher(HOST, tftp.port))
            assert await f.fetch("ITLFile.tlv") == b"itl"
            assert f.transport == "tftp"
            assert f.last_fallback is not None and f.last_fallback.code == code
    run(main())


@pytest.mark.parametrize(("response", "kind", "falls_back"), [
    (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "not-found", False),
    (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "refused", False),
    (b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", "error", False),
], ids=short)
def test_a_client_error_on_6970_does_not_fall_back_by_default(response: bytes, kind: str,
                                                              falls_back: bool) -> None:
    async def main() -> None:
        async with TftpServer({"ITLFile.tlv": b"itl"}, HOST, 0) as tftp, scripted(response) as port:
            f = HttpThenTftpFetcher(HttpFetcher(HOST, port, timeout=1.0), TftpFetcher(HOST, tftp.port))
            with pytest.raises(TransportError) as ei:
                await f.fetch("ITLFile.tlv")
            assert ei.value.kind == kind and f.transport == "http"
            if kind == "not-found":  # the documented switch
                g = HttpThenTftpFetcher(HttpFetcher(HOST, port, timeout=1.0), TftpFetcher(HOST, tftp.port),
                                        fallback_on_not_found=True)
                assert await g.fetch("ITLFile.tlv") == b"itl"
    run(main())


def test_a_server_trickling_one_byte_at_a_time_is_bounded_by_the_timeout() -> None:
    async def main() -> None:
        async with scripted(OK + b"Content-Length: 2\r\n\r\nok", trickle=0.05) as port:
            start = time.monotonic()
            with pytest.raises(TransportError) as ei:
                await http_get(HOST, port, "f", timeout=0.5)
            assert ei.value.kind == "timeout" and "timeout after 0.5s" in str(ei.value)
            assert time.monotonic() - start < 1.5
    run(main())


# --- Content-Length by value (RFC 9110 §8.6 1*DIGIT): 0 and 00, 5 and 05 are one length, however many
# zeros lead; values that differ, or are not digits, stay refused
@pytest.mark.parametrize(("lengths", "body"), [
    (b"Content-Length: 0\r\nContent-Length: 00\r\n", b""),
    (b"Content-Length: 5, 05\r\n", b"hello"),
    (b"Content-Length: " + b"0" * 30 + b"5\r\n", b"hello"),
    (b"Content-Length: " + b"0" * 21 + b"\r\n", b""),
])
def test_equal_lengths_written_with_leading_zeros_are_one_length(lengths: bytes, body: bytes) -> None:
    async def main() -> None:
        async with scripted(OK + lengths + b"\r\n" + body) as port:
            assert await http_get(HOST, port, "f", timeout=2) == body
    run(main())


@pytest.mark.parametrize(("lengths", "words"), [
    (b"Content-Length: 5\r\nContent-Length: 005 \r\nContent-Length: 6\r\n", "Content-Length values differ"),
    (b"Content-Length: +5\r\n", "bad Content-Length"),
    (b"Content-Length: 0x5\r\n", "bad Content-Length"),
    (b"Content-Length: " + b"9" * 21 + b"\r\n", "bad Content-Length"),
])
def test_lengths_that_differ_or_are_not_digits_are_refused(lengths: bytes, words: str) -> None:
    async def main() -> None:
        async with scripted(OK + lengths + b"\r\nhello") as port:
            with pytest.raises(TransportError, match=words):
                await http_get(HOST, port, "f", timeout=2)
    run(main())
