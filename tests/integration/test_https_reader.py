"""Over loopback TLS: the phone's HTTPS application server fetch reads its response with the rules of the
phone's file fetches (``phoneemu.net.http.read_response``; spec §E.7.1, §H).

A booted phone (TVS usable) opens a TLS server presenting the lab's application-server certificate (TVS
vouches for it, so the phone trusts it and sends ``GET /``); the server answers with a scripted byte
string. Before, ``phone/https.py`` had a reader of its own: a chunked body came back still chunk-encoded,
a ``100 Continue`` was taken as the status, Content-Length was ignored (read to EOF: a server keeping the
connection open ran the phone into its time-out), a bare-LF head was "malformed", a malformed header
line was accepted, and a body above ``max_body`` was kept cut short.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.net.tls import server_context
from phoneemu.phone.https import HttpsResult
from tests.integration.test_phone_rules_e2e import HOST, NOW, Clock, cluster, make_phone, run, target

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _answer(payload: bytes, *, keep_open: bool = False) -> Script:
    """Read the request head, write ``payload``; then close, or (``keep_open``) wait for the client to."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(payload)
        await writer.drain()
        if keep_open:
            await asyncio.wait_for(reader.read(1), 10.0)  # the client's close (bounded)
    return script


async def _open(c: LabCluster, tmp: Path, script: Script, *, timeout: float = 5.0) -> HttpsResult:
    clock = Clock()
    async with LabServers(c, host=HOST, clock=clock, app_https=True) as srv:
        phone = make_phone(c, tmp, clock)
        assert (await phone.boot(target(srv))).ok
        ident = c.app_server_identity(now=NOW)  # vouched for by the lab's TVS (APP-SERVER)
        ctx = server_context(ident.cert, ident.key, min_version="1.0", max_version="1.3")

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                with contextlib.suppress(Exception):
                    await script(reader, writer)
            finally:
                writer.close()

        server = await asyncio.start_server(handle, HOST, 0, ssl=ctx)
        try:
            return await phone.open_https(HOST, server.sockets[0].getsockname()[1], timeout=timeout)
        finally:
            server.close()
            await server.wait_closed()


def _fetch(tmp_path: Path, script: Script, *, timeout: float = 5.0) -> HttpsResult:
    c = cluster(tmp_path, tvs_ttl=3600)
    got: HttpsResult = run(_open(c, tmp_path, script, timeout=timeout))
    assert got.trusted and got.how == "tvs", (got.how, got.rule, got.reason)  # the GET was sent
    return got


CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/xml\r\n\r\n"
           b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")


def test_a_chunked_body_is_decoded(tmp_path: Path) -> None:
    got = _fetch(tmp_path, _answer(CHUNKED))
    assert (got.http_status, got.body) == (200, b"hello world"), got.reason


def test_100_continue_then_200_gives_the_final_status_and_body(tmp_path: Path) -> None:
    got = _fetch(tmp_path, _answer(b"HTTP/1.1 100 Continue\r\n\r\n"
                                   b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"))
    assert (got.http_status, got.body) == (200, b"hi"), got.reason


def test_content_length_is_respected_when_the_server_keeps_the_connection_open(tmp_path: Path) -> None:
    # Old reader: read to EOF, so it waited out its time-out and kept nothing.
    got = _fetch(tmp_path, _answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA", keep_open=True),
                 timeout=3.0)
    assert (got.http_status, got.body) == (200, b"hello"), got.reason
    assert "within" not in got.reason


def test_a_bare_lf_head_is_read(tmp_path: Path) -> None:
    got = _fetch(tmp_path, _answer(b"HTTP/1.1 200 OK\nContent-Type: text/xml\nContent-Length: 2\n\nhi"))
    assert (got.http_status, got.body) == (200, b"hi"), got.reason


@pytest.mark.parametrize(("payload", "why"), [
    (b"HTTP/1.1 200 OK\r\nNo colon here\r\nContent-Length: 2\r\n\r\nhi", "malformed field 'No colon here'"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi!", "Content-Length values differ"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
     "both Transfer-Encoding and Content-Length"),
])
def test_a_malformed_head_is_a_clear_failure_and_no_body_is_kept(tmp_path: Path, payload: bytes,
                                                                  why: str) -> None:
    got = _fetch(tmp_path, _answer(payload))
    assert (got.http_status, got.body) == (None, b"")
    assert "; malformed HTTP response (" in got.reason and why in got.reason, got.reason


def test_a_body_above_max_body_is_refused_not_kept_cut_short(tmp_path: Path) -> None:
    big = b"x" * 70_000  # open_https's max_body is 65536
    got = _fetch(tmp_path, _answer(b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + big))
    assert (got.http_status, got.body) == (None, b"")
    assert "HTTP 200 body above 65536 bytes, not kept" in got.reason, got.reason


def test_a_non_200_status_is_kept_with_its_decoded_body_and_named_in_the_reason(tmp_path: Path) -> None:
    got = _fetch(tmp_path, _answer(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"9\r\nnot here\n\r\n0\r\n\r\n"))
    assert (got.http_status, got.body) == (404, b"not here\n")
    assert got.reason.endswith("; HTTP 404, not 200"), got.reason


def test_a_server_trickling_its_head_is_bounded_by_the_timeout(tmp_path: Path) -> None:
    # Regression guard (the old reader was bounded too): the whole exchange is within ``timeout``.
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 400:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.02)

    got = _fetch(tmp_path, trickle, timeout=1.0)
    assert (got.http_status, got.body) == (None, b"")
    assert "within 1s" in got.reason, got.reason
