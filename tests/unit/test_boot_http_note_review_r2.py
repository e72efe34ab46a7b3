"""``boot``'s note when HTTP answered none of its requests (:mod:`phoneemu.commands._watched_fetch`): an HTTP
file server that responded but whose bodies ``--timeout`` cut (they stopped coming) is told a longer
``--timeout``, not another ``--http-port`` (was: the wrong-port advice, for a server on the right port).
Over real loopback sockets: an HTTP server that sends its head and part of the body, then holds the rest
until the client leaves; a TFTP server that answers."""

from __future__ import annotations

import asyncio

import pytest

from phoneemu.commands._watched_fetch import Ports, WatchedFetcher
from phoneemu.net.fetch import HttpFetcher, HttpThenTftpFetcher, TftpFetcher
from phoneemu.net.http import HttpTimeoutError, http_get
from phoneemu.net.tftp_server import TftpServer

HOST = "127.0.0.1"
CUT_S = 0.3  # the HTTP --timeout that cuts the held bodies
HELD_S = 5.0  # the longest the server holds a body (a test gone wrong ends)
FILES = {"SEP001122334455.cnf.xml": b"<device/>", "ITLFile.tlv": b"x" * 10}


async def _slow_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A 200 of 3000 bytes: 1000 at once, the rest never (the client's time-out closes the connection)."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n" + b"a" * 1000)
    await writer.drain()
    try:
        await asyncio.wait_for(reader.read(), HELD_S)
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


def test_a_time_out_after_the_response_head_says_the_server_responded() -> None:
    async def run() -> None:
        server = await asyncio.start_server(_slow_body, HOST, 0)
        try:
            with pytest.raises(HttpTimeoutError) as caught:
                await http_get(HOST, server.sockets[0].getsockname()[1], "ITLFile.tlv", timeout=CUT_S)
        finally:
            server.close()
            await server.wait_closed()
        assert caught.value.kind == "timeout" and caught.value.responded

    asyncio.run(run())


def test_http_cut_by_the_timeout_behind_an_answering_tftp_is_told_a_longer_timeout() -> None:
    async def run() -> str | None:
        http = await asyncio.start_server(_slow_body, HOST, 0)
        http_port = http.sockets[0].getsockname()[1]
        try:
            async with TftpServer(FILES, HOST, 0) as tftp:
                fetcher = HttpThenTftpFetcher(HttpFetcher(HOST, http_port, timeout=CUT_S),
                                              TftpFetcher(HOST, tftp.port, timeout=HELD_S, retries=0))
                watched = WatchedFetcher(fetcher, Ports(HOST, tftp.port, http_port), tell=lambda _: None)
                for name, data in FILES.items():
                    assert await watched.fetch(name) == data
                assert watched.summary() == (f"0 of 2 request(s) answered over HTTP {HOST}:{http_port}; "
                                             f"2 of 2 request(s) answered over TFTP {HOST}:{tftp.port}")
                return watched.http_unanswered_note()
        finally:
            http.close()
            await http.wait_closed()

    note = asyncio.run(run())
    assert note is not None and note.endswith(
        " answered none of 2 request(s) in time: --timeout cut 2 response(s) whose body stopped coming, so "
        "each file was asked of TFTP after it: a stalling server or link needs a longer --timeout S (it "
        "bounds each wait for more of the body)"), note
    assert "--http-port" not in note
