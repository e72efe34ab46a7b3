"""Red team R13: the phone's HTTP 6970 file fetch against a hostile HTTP server on loopback (spec §H.1:
HTTP first, TFTP on failure). Each answer ends with a reason naming what was wrong; the phone then asks
TFTP where the rules say so (phoneemu.net.fetch and phoneemu.net.http module docstrings)."""

from __future__ import annotations

import contextlib

import pytest

from phoneemu.errors import TransportError
from phoneemu.net.fetch import HttpFetcher, HttpThenTftpFetcher, TftpFetcher
from phoneemu.net.http import http_get
from phoneemu.net.tftp import TftpServer
from tests.helpers import run_within
from tests.http_server_helpers import scripted_http

HOST = "127.0.0.1"
NAME = "SEP001122334455.cnf.xml.sgn"
TFTP_COPY = b"the file as TFTP serves it"
OK = b"HTTP/1.1 200 OK\r\n"
run = run_within(20)


def hostile(*responses: bytes, hold: bool = False, drip: float = 0.0,
            connections: list[int] | None = None) -> contextlib.AbstractAsyncContextManager[int]:
    """A server answering the n-th connection's request head with ``responses[n]`` (the last one again
    after), a byte every ``drip`` seconds when set (at most 2,000 bytes), then closing, or with ``hold``
    keeping the connection open until the client goes (at most 10 s); its port. ``connections`` gets the
    index of each connection made (:func:`tests.http_server_helpers.scripted_http`)."""
    return scripted_http(*responses, hold=10.0 if hold else 0.0, drip=drip, connections=connections)


async def fetch_through(port: int, *, timeout: float = 2.0,
                        max_time: float | None = 10.0) -> tuple[bytes, HttpThenTftpFetcher]:
    """The phone's fetch of NAME: HTTP on ``port``, then a lab TFTP server holding TFTP_COPY."""
    async with TftpServer({NAME: TFTP_COPY}, HOST, 0) as tftp:
        fetcher = HttpThenTftpFetcher(HttpFetcher(HOST, port, timeout=timeout, max_time=max_time,
                                                  max_size=1 << 20),
                                      TftpFetcher(HOST, tftp.port, timeout=0.5))
        return await fetcher.fetch(NAME), fetcher


# -- fixed: a response that is not HTTP is refused as its first bytes come --------------------------------

@pytest.mark.parametrize("hold", [True, False], ids=["held-open", "closed"])
@pytest.mark.parametrize(("response", "words", "like"), [
    # quoted up to the first byte that cannot begin 'HTTP/', never further (H39: the same text however the
    # bytes came)
    (b"SSH-2.0-OpenSSH_9.6\r\n", "begins 53 ('S'), not 'HTTP/'", "server: looks like SSH or SIP?)"),
    (b"<?xml version='1.0'?>\n<device>\n</device>\n", "begins 3c ('<'), not 'HTTP/'", "server)"),
    (b"\x01\x02\x00\x05\x01\x00\x01" * 50, "begins 01, not 'HTTP/'", "server)"),  # no newline
    (b"\x16\x03\x03\x00\x30" + b"\x00" * 48, "begins 16, not 'HTTP/'",
     "server: looks like TLS, an HTTPS server?)"),
    (b"\r\n\r\nXTTP/1.1 200 OK\r\n\r\n", "begins 58 ('X') after 4 bytes of empty lines, not 'HTTP/'",
     "server)"),  # empty lines skipped
], ids=["ssh", "http09-xml", "http09-binary", "tls", "after-empty-lines"])
def test_a_response_that_is_not_http_is_refused_at_its_first_bytes(response: bytes, words: str, like: str,
                                                                    hold: bool) -> None:
    """HTTP/0.9 (the file sent with no status line) or another service on 6970: was waited for until the
    server closed ("connection closed before the end of the response head", not saying why) or, the
    connection held open, until the timeout ("no response to the GET": it had answered)."""
    async def main() -> None:
        async with hostile(response, hold=hold) as port:
            with pytest.raises(TransportError) as ei:
                await http_get(HOST, port, NAME, timeout=3)
            text = str(ei.value)
            assert ei.value.kind == "protocol", text
            assert f"{NAME}: malformed status line: the response {words} (an HTTP/0.9 server" in text, text
            assert text.endswith(f", or not an HTTP {like}"), text
            data, fetcher = await fetch_through(port, timeout=3)
            assert (data, fetcher.transport) == (TFTP_COPY, "tftp")
            assert fetcher.last_fallback is not None and fetcher.last_fallback.kind == "protocol"
    run(main())


def test_a_status_line_begun_slowly_is_read() -> None:
    """The first bytes are checked as they come, one at a time too: ``HTTP/`` dripped is no refusal."""
    async def main() -> None:
        async with hostile(b"\r\n" + OK + b"Content-Length: 2\r\n\r\nok", drip=0.01) as port:
            assert await http_get(HOST, port, NAME, timeout=2) == b"ok"
    run(main())


# -- fixed: a 101 Switching Protocols the GET never asked for falls back to TFTP ---------------------------

@pytest.mark.parametrize("hold", [True, False], ids=["held-open", "closed"])
def test_an_unasked_101_switching_protocols_falls_back_to_tftp(hold: bool) -> None:
    """RFC 9110 §15.2.2: a server switches only to a protocol the request's Upgrade asked for; the phone's
    GET asks none. Was kind "error" (code 101): the phone gave up on the file, never asking TFTP."""
    response = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                b"\x81\x00")

    async def main() -> None:
        async with hostile(response, hold=hold) as port:
            data, fetcher = await fetch_through(port)
        assert (data, fetcher.transport) == (TFTP_COPY, "tftp")
        fell = fetcher.last_fallback
        assert fell is not None and (fell.kind, fell.code) == ("protocol", 101), fell
        assert "HTTP 101 (Switching Protocols)" in str(fell) and "asked for no Upgrade" in str(fell), fell
    run(main())


# -- fixed: a head begun, then stalled, is not "no response" -----------------------------------------------

def test_a_head_begun_then_stalled_is_said_so_not_no_response() -> None:
    """Was: "connected, but no response to the GET (is port N an HTTP file server?)" though its status
    line had come: the server is an HTTP one, stalled."""
    async def main() -> None:
        async with hostile(OK + b"Content-Type: application/octet-stream\r\n", hold=True) as port:
            with pytest.raises(TransportError) as ei:
                await http_get(HOST, port, NAME, timeout=0.3, max_time=None)
            data, fetcher = await fetch_through(port, timeout=0.3)
        text = str(ei.value)
        assert ei.value.kind == "timeout" and "the response head begun, not ended" in text, text
        assert "no response to the GET" not in text, text
        assert (data, fetcher.transport) == (TFTP_COPY, "tftp")
        assert fetcher.last_fallback is not None and fetcher.last_fallback.kind == "timeout"
    run(main())


def test_a_head_begun_then_capped_says_the_head_was_under_way() -> None:
    async def main() -> None:
        async with hostile(OK + b"X-Slow: " + b"a" * 2000 + b"\r\n\r\n", drip=0.02) as port:
            with pytest.raises(TransportError) as ei:
                await http_get(HOST, port, NAME, timeout=5, max_time=0.3)
        assert "in all (the response head under way)" in str(ei.value), ei.value
    run(main())


# -- fixed: a field name that is not a token -----------------------------------------------------------------

@pytest.mark.parametrize("field", [b"Content\x01Length: 5", b"X\x1bY: z", b"X\x7f: z", b"(X): z"])
def test_a_field_name_that_is_not_a_token_is_refused(field: bytes) -> None:
    """RFC 9110 §5.1: a field name is a token. Was: taken (only white space in a name was refused), a
    control character in a name left to whatever reads the field next."""
    async def main() -> None:
        async with hostile(OK + field + b"\r\nContent-Length: 2\r\n\r\nok") as port:
            with pytest.raises(TransportError) as ei:
                await http_get(HOST, port, NAME, timeout=2)
        assert ei.value.kind == "protocol" and "header line 2: malformed field" in str(ei.value), ei.value
    run(main())


# -- what held: each hostile answer is named, and the phone asks TFTP ----------------------------------------

CHUNKED = OK + b"Transfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(("response", "kind", "words"), [
    (OK + b"X: " + b"a" * 10_000_000 + b"\r\n\r\n", "protocol", "response head above 8192 bytes"),  # 10 MB
    (OK + b"X: y\r\n" * 100_000 + b"\r\n", "protocol", "response head above 8192 bytes"),
    (b"\r\n" * 10_000 + OK + b"\r\n", "protocol", "response head above 8192 bytes"),
    (b"HTTP/1.1 100 Continue\r\n\r\n" * 9 + OK + b"Content-Length: 2\r\n\r\nok", "protocol",
     "more than 8 interim 1xx responses"),
    (OK + b"X: a\x00b\r\nContent-Length: 2\r\n\r\nok", "protocol", "CR or NUL in field"),
    (OK + b"X: a\rContent-Length: 9\r\nContent-Length: 2\r\n\r\nok", "protocol", "CR or NUL in field"),
    (b"HTTP/1.1 200 O\x00K\r\nContent-Length: 2\r\n\r\nok", "protocol", "control character in the reason"),
    (b"HTTP/1.1 99 X\r\n\r\n", "protocol", "malformed status line 'HTTP/1.1 99 X'"),
    (b"HTTP/1.1 200\x0bOK\r\n\r\n", "protocol", "malformed status line"),
    (b"HTTP/2 200\r\n\r\nok", "protocol", "malformed status line 'HTTP/2 200'"),
    (OK + b"Content-Length: -1\r\n\r\nok", "protocol", "bad Content-Length '-1'"),
    (OK + b"Content-Length: 99999999999999999999999\r\n\r\nok", "protocol", "bad Content-Length"),
    (OK + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nokk", "protocol", "Content-Length values differ"),
    (OK + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "protocol",
     "both Transfer-Encoding and Content-Length"),
    (CHUNKED + b"-2\r\nok\r\n0\r\n\r\n", "protocol", "bad chunk size b'-2'"),
    (CHUNKED + b"10000000000000000\r\n", "protocol", "bad chunk size"),  # 2**64
    (CHUNKED + b"1_0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n", "protocol", "bad chunk size"),  # int() takes '_'
    (CHUNKED + b"2;" + b"e" * 100_000 + b"\r\nok\r\n0\r\n\r\n", "protocol", "chunk-size or trailer line"),
    (CHUNKED + b"2\r\nok\r\n0\r\n" + b"T: x\r\n" * 100_000 + b"\r\n", "protocol", "trailers above 8192"),
    (CHUNKED + b"2\r\nokX\r\n0\r\n\r\n", "protocol", "chunk not followed by CRLF"),
    (CHUNKED + b"2\r\nok\r\n", "protocol", "connection closed inside the chunked body"),
    (OK + b"Content-Length: 10\r\n\r\nok", "protocol", "body truncated at 2 of 10"),
    (OK + b"Content-Encoding: gzip\r\nContent-Length: 4\r\n\r\n\x1f\x8b\x08\x00", "protocol",
     "unrequested Content-Encoding 'gzip'"),
    (OK + b"Transfer-Encoding: gzip\r\n\r\n\x1f\x8b", "protocol", "unsupported transfer coding 'gzip'"),
    (b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "protocol",
     "Transfer-Encoding in an HTTP/1.0 response"),
    (b"", "protocol", "connection closed before the end of the response head"),
    (b"HTTP/1.1 302 Found\r\nLocation: http://203.0.113.5/x\r\nContent-Length: 0\r\n\r\n", "error",
     "(redirect to 'http://203.0.113.5/x', not followed)"),
    (b"HTTP/1.1 307 T\r\nLocation: http://x/\x1b[2J\r\nContent-Length: 0\r\n\r\n", "error",
     r"(redirect to 'http://x/\x1b[2J', not followed)"),
    (b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", "error", "HTTP 503"),
], ids=lambda v: repr(v[:30]) if isinstance(v, bytes) else str(v))
def test_each_hostile_answer_is_named_and_the_file_asked_of_tftp(response: bytes, kind: str,
                                                                  words: str) -> None:
    async def main() -> None:
        async with hostile(response) as port:
            data, fetcher = await fetch_through(port)
        assert (data, fetcher.transport) == (TFTP_COPY, "tftp")
        fell = fetcher.last_fallback
        assert fell is not None and fell.kind == kind and words in str(fell), fell
        assert "\n" not in str(fell)
    run(main())


@pytest.mark.parametrize(("response", "kind", "code"), [
    (b"HTTP/1.1 204 No Content\r\n\r\n" + OK + b"Content-Length: 5\r\n\r\nsmugl", "error", 204),
    (b"HTTP/1.1 206 Partial Content\r\nContent-Length: 2\r\n\r\nok", "error", 206),
    (b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", "error", 401),
    (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "refused", 403),
    (OK + b"Content-Length: 99999999999\r\n\r\nok", "too-large", None),
    (CHUNKED + b"ffffffff\r\nok", "too-large", None),
], ids=lambda v: repr(v[:30]) if isinstance(v, bytes) else str(v))
def test_an_answer_the_rules_keep_is_not_asked_of_tftp(response: bytes, kind: str, code: int | None) -> None:
    """The fallback rule's other side (phoneemu.net.fetch: a 4xx other than 404, a 2xx other than 200, a
    file above the size bound are answers, not failures): the reason names it, the body is never taken."""
    async def main() -> None:
        async with hostile(response) as port:
            with pytest.raises(TransportError) as ei:
                await fetch_through(port)
        assert (ei.value.kind, ei.value.code) == (kind, code), ei.value
    run(main())


def test_interim_responses_then_the_file_are_read() -> None:
    response = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"
                b"HTTP/1.1 102 Processing\r\n\r\n" + OK + b"Content-Length: 4\r\n\r\nfile")

    async def main() -> None:
        async with hostile(response) as port:
            data, fetcher = await fetch_through(port)
        assert (data, fetcher.transport) == (b"file", "http")
    run(main())


def test_a_body_longer_than_its_content_length_is_cut_at_it_and_a_second_response_never_taken() -> None:
    """Keep-alive with a second, unsolicited response after the first: the phone asks each file on a
    connection of its own (``Connection: close``), so the extra bytes are never the next file's."""
    first = (OK + b"Content-Length: 5\r\nConnection: keep-alive\r\n\r\nfirst"
             + OK + b"Content-Length: 6\r\n\r\nforged")
    second = OK + b"Content-Length: 6\r\n\r\nsecond"
    connections: list[int] = []

    async def main() -> None:
        async with hostile(first, second, hold=True, connections=connections) as port:
            fetcher = HttpFetcher(HOST, port, timeout=2)
            assert await fetcher.fetch("a") == b"first"
            assert await fetcher.fetch("b") == b"second"
        assert connections == [0, 1]
    run(main())


def test_a_server_that_never_closes_after_the_body_does_not_hold_the_phone() -> None:
    async def main() -> None:
        async with hostile(OK + b"Content-Length: 4\r\n\r\nfile", hold=True) as port:
            data, fetcher = await fetch_through(port, timeout=5, max_time=None)
        assert (data, fetcher.transport) == (b"file", "http")
    run(main())


@pytest.mark.parametrize(("response", "words"), [
    (OK + b"Content-Length: 100\r\n\r\nok", "no data for 0.3 s with the 100-byte body under way"),
    (OK + b"\r\nread to the end, never ended", "no data for 0.3 s with the body under way"),
    (CHUNKED + b"2\r\nok\r\n", "no data for 0.3 s with the body under way"),
    (b"", "connected, but no response to the GET"),
])
def test_a_server_that_stops_and_holds_is_cut_by_the_wait(response: bytes, words: str) -> None:
    async def main() -> None:
        async with hostile(response, hold=True) as port:
            data, fetcher = await fetch_through(port, timeout=0.3)
        assert (data, fetcher.transport) == (TFTP_COPY, "tftp")
        fell = fetcher.last_fallback
        assert fell is not None and fell.kind == "timeout" and words in str(fell), fell
    run(main())


@pytest.mark.parametrize("response", [
    OK + b"Content-Length: 2000\r\n\r\n" + b"x" * 2000,
    CHUNKED + b"1\r\nx\r\n" * 400 + b"0\r\n\r\n",
], ids=["content-length", "chunked"])
def test_a_slow_drip_inside_each_wait_is_cut_by_the_whole_download_cap(response: bytes) -> None:
    async def main() -> None:
        async with hostile(response, drip=0.005) as port:
            data, fetcher = await fetch_through(port, timeout=2, max_time=0.5)
        assert (data, fetcher.transport) == (TFTP_COPY, "tftp")
        fell = fetcher.last_fallback
        assert fell is not None and fell.kind == "timeout" and "took longer than 0.5 s in all" in str(fell)
    run(main())


# -- review of af506c0: a close inside the status line counts its 'HTTP/' too ------------------------------

@pytest.mark.parametrize(("response", "come"), [
    (b"HTTP/1.1 200", 12),  # was "after 7 bytes": the 'HTTP/' read by the start's check not counted
    (b"\r\nHTTP/1.1 200 OK\r\nContent-Le", 29),  # an empty line before it, a field line cut
    (b"HTT", 3),
    (b"\r\n", 2),
])
def test_a_close_inside_the_head_says_every_byte_of_it_that_came(response: bytes, come: int) -> None:
    async def main() -> None:
        async with hostile(response) as port:
            data, fetcher = await fetch_through(port)
        assert (data, fetcher.transport) == (TFTP_COPY, "tftp")
        fell = fetcher.last_fallback
        assert fell is not None and fell.kind == "protocol", fell
        said = f"connection closed before the end of the response head (after {come} bytes of it)"
        assert str(fell).endswith(said), fell
    run(main())
