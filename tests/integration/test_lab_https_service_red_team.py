"""The lab HTTPS application server's request handling (lab/https_service.py), over loopback TCP (the
handler is the same behind TLS; red team R16).

Before: a request-target with a LF, an ESC or a NUL was answered 404 and logged (and put in the request
log) as written — a forged log line, terminal escapes; a head whose lines end with a bare LF (RFC 9112 §2.2,
taken by the HTTP port and by the phone) got no answer until the read timeout; ``HTTP/1.1x`` and a field
line without a colon were served 200; a 405 named no ``Allow`` (RFC 9110 §15.5.6). What held is kept
here too: no path reaches anything but ``/``, HEAD has no body, a head over ``max_header`` is 400, and the
server answers the next client after each of them.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from phoneemu.lab.https_service import DIRECTORY_XML, HttpsAppHandler
from tests.helpers import run

HOST = "127.0.0.1"
GOOD = b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n"


async def _ask(handler: HttpsAppHandler, *requests: bytes) -> list[bytes]:
    """Each request on a connection of its own, in turn; each whole answer (read to the server's close)."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        finally:
            writer.close()  # as TlsServer does once the handler is done

    server = await asyncio.start_server(serve, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    answers = []
    try:
        for request in requests:
            reader, writer = await asyncio.open_connection(HOST, port)
            try:
                writer.write(request)
                await writer.drain()
                answers.append(await asyncio.wait_for(reader.read(), 5.0))
            finally:
                writer.close()
    finally:
        server.close()
        await server.wait_closed()
    return answers


def _serve(*requests: bytes, caplog: pytest.LogCaptureFixture | None = None
           ) -> tuple[list[bytes], list[tuple[str, str, int]]]:
    seen: list[tuple[str, str, int]] = []
    handler = HttpsAppHandler(read_timeout=1.0, on_log=lambda *entry: seen.append(entry))
    if caplog is None:
        return run(_ask(handler, *requests), limit=20.0), seen
    with caplog.at_level(logging.INFO, logger="phoneemu.lab.https"):
        return run(_ask(handler, *requests), limit=20.0), seen


@pytest.mark.parametrize("request_line", [b"GET /\nINFO https: 10.0.0.9:5060 / -> 200 HTTP/1.1",
                                          b"GET /\x1b[2J\x1b[31mowned HTTP/1.1",
                                          b"GET /a\x00b HTTP/1.1",
                                          b"GET /\x7f HTTP/1.1"])
def test_a_control_character_in_the_request_line_is_400_and_never_logged_as_written(
        request_line: bytes, caplog: pytest.LogCaptureFixture) -> None:
    answers, seen = _serve(request_line + b"\r\n\r\n", GOOD, caplog=caplog)
    assert answers[0].startswith(b"HTTP/1.1 400 Bad Request\r\n"), answers[0]
    assert answers[1].startswith(b"HTTP/1.1 200 OK\r\n") and answers[1].endswith(DIRECTORY_XML)
    assert [entry[1:] for entry in seen] == [("", 400), ("/", 200)]  # the request log: no path as written
    logged = [r.getMessage() for r in caplog.records]
    assert not any(ch in text for text in logged for ch in "\n\x1b\x00\x7f"), logged
    assert any("(malformed: " in text and "-> 400" in text for text in logged), logged  # said why


def test_a_head_with_bare_lf_line_ends_is_answered() -> None:
    answers, seen = _serve(b"GET / HTTP/1.1\nHost: lab\n\n", b"\r\n\nHEAD /?x=1 HTTP/1.0\n\n")
    assert answers[0].startswith(b"HTTP/1.1 200 OK\r\n") and answers[0].endswith(DIRECTORY_XML)
    assert answers[1].startswith(b"HTTP/1.1 200 OK\r\n") and answers[1].endswith(b"\r\n\r\n")  # HEAD
    assert [entry[1:] for entry in seen] == [("/", 200), ("/?x=1", 200)]


@pytest.mark.parametrize("field", [b"User-Agent: Allegro-Software-WebClient/5.40b1 M\xfcller",
                                   b"Cookie: name=\xc3\xa9t\xc3\xa9", b"X-Obs: \x80\x9b\xff"])
def test_a_field_value_holding_obs_text_is_served(field: bytes, caplog: pytest.LogCaptureFixture) -> None:
    """RFC 9110 §5.5: a field value may hold obs-text (bytes 0x80 to 0xFF, Latin-1 or UTF-8 text a client
    sends as it is). Was 400 "non-ASCII request head" (the head read as the HTTP port reads it), where the
    server before that reading, looking at the request line alone, served it."""
    request = (b"GET /?l=a HTTP/1.1\r\nHost: 10.0.0.1:8443\r\nAccept: x-CiscoIPPhone/*;version=3.0, "
               b"text/*\r\nx-CiscoIPPhoneModelName: CP-8861\r\n" + field + b"\r\n\r\n")
    answers, seen = _serve(request, caplog=caplog)
    assert answers[0].startswith(b"HTTP/1.1 200 OK\r\n") and answers[0].endswith(DIRECTORY_XML), answers[0]
    assert [entry[1:] for entry in seen] == [("/?l=a", 200)]
    logged = [r.getMessage() for r in caplog.records]
    assert not any(ch in text for text in logged for ch in "\x80\x9b\xff\xfc"), logged  # the value unlogged


@pytest.mark.parametrize(("request_head", "why"), [
    (b"GET / HTTP/1.1x\r\n\r\n", "malformed request line 'GET / HTTP/1.1x'"),
    (b"GET / HTTP/2.0\r\n\r\n", "malformed request line"),
    (b"GET  / HTTP/1.1\r\n\r\n", "malformed request line"),
    (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", "malformed header field 'no colon here'"),
    (b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", "malformed header field"),
    (b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", "non-ASCII request line"),
    (b"GET / HTTP/1.1\r\nN\xe4me: x\r\n\r\n", "malformed header field"),  # a field name is a token
    (b"GET http://lab/ HTTP/1.1\r\n\r\n", "does not start with /"),
])
def test_a_malformed_head_is_400_with_why_logged(request_head: bytes, why: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    answers, seen = _serve(request_head, caplog=caplog)
    assert answers[0].startswith(b"HTTP/1.1 400 Bad Request\r\n"), answers[0]
    assert [entry[1:] for entry in seen] == [("", 400)]
    assert any(why in r.getMessage() for r in caplog.records), caplog.text


@pytest.mark.parametrize("request_head", [b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
                                          b"OPTIONS * HTTP/1.1\r\n\r\n", b"DELETE / HTTP/1.1\r\n\r\n",
                                          b"get / HTTP/1.1\r\n\r\n"])
def test_another_method_is_405_naming_the_allowed_ones(request_head: bytes) -> None:
    answers, seen = _serve(request_head)
    head = answers[0].split(b"\r\n\r\n", 1)[0]
    assert head.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n"), head
    assert b"\r\nAllow: GET, HEAD\r\n" in head + b"\r\n", head
    assert [entry[2] for entry in seen] == [405]


@pytest.mark.parametrize("target", [b"/../private/itlrecovery.key", b"/%2e%2e/private/tvs.key",
                                    b"/..%2fprivate", b"/\\..\\private\\ca.key", b"//etc/passwd",
                                    b"/private/../", b"/%00"])
def test_no_path_but_slash_reaches_anything(target: bytes) -> None:
    answers, seen = _serve(b"GET " + target + b" HTTP/1.1\r\n\r\n")
    assert answers[0].startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert answers[0].endswith(b"\r\n\r\n404 Not Found\n")
    assert seen[0][1:] == (target.decode(), 404)


def test_a_head_over_max_header_is_400_and_the_next_client_is_served() -> None:
    answers, seen = _serve(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", GOOD)
    assert answers[0].startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert answers[1].endswith(DIRECTORY_XML)
    assert [entry[1:] for entry in seen] == [("", 400), ("/", 200)]
