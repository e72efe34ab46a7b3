"""HTTP 6970 server and client, fetchers (spec §H.1: HTTP first, TFTP on failure)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import pytest

from phoneemu.errors import TransportError
from phoneemu.net.fetch import Fetcher, HttpFetcher, HttpThenTftpFetcher, MemoryFetcher, TftpFetcher
from phoneemu.net.http import HttpServer, http_get
from phoneemu.net.tftp import TftpClientPool, TftpServer
from tests.helpers import run_within

HOST = "127.0.0.1"
FILES = {"ITLFile.tlv": os.urandom(10_240), "SEP001122334455.cnf.xml": b"<device/>", "dir/a b.txt": b"sp"}


run = run_within(10)


async def raw_request(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(data)
    await writer.drain()
    out = await asyncio.wait_for(reader.read(), 2)
    writer.close()
    await writer.wait_closed()
    return out


def test_get_and_errors() -> None:
    seen: list[tuple[str, int]] = []

    async def main() -> None:
        async with HttpServer(FILES, HOST, 0, on_request=lambda _p, _m, n, s: seen.append((n, s))) as srv:
            assert await http_get(HOST, srv.port, "ITLFile.tlv") == FILES["ITLFile.tlv"]
            assert await http_get(HOST, srv.port, "/dir/a b.txt") == b"sp"
            with pytest.raises(TransportError) as ei:
                await http_get(HOST, srv.port, "CTLFile.tlv")
            assert (ei.value.kind, ei.value.code) == ("not-found", 404)
            with pytest.raises(TransportError) as ei:
                await http_get(HOST, srv.port, "../etc/passwd")
            assert (ei.value.kind, ei.value.code) == ("refused", 403)
            with pytest.raises(TransportError) as ei:
                await http_get(HOST, srv.port, "ITLFile.tlv", max_size=100)
            assert ei.value.kind == "too-large"
    run(main())
    assert ("CTLFile.tlv", 404) in seen and ("../etc/passwd", 403) in seen


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GARBAGE\r\n\r\n", b"400"),
    (b"GET /ITLFile.tlv\r\n\r\n", b"400"),
    (b"GET /ITLFile.tlv HTTP/1.1\r\nbad header\r\n\r\n", b"400"),
    (b"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"405"),
    (b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", b"405"),
    (b"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"405"),
    (b"GET /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", b"400"),
    (b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nConnection: close\r\n\r\n", b"403"),
    (b"GET /a%5cb HTTP/1.1\r\nConnection: close\r\n\r\n", b"403"),
    (b"GET /%ff HTTP/1.1\r\n\r\n", b"400"),
    (b"GET /x HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", b"431"),
    (b"\xff\xfe / HTTP/1.1\r\n\r\n", b"400"),
    (b"GET /ITLFile.tlv HTTP/1.0\r\n\r\n", b"200"),
    # a bare LF ends a line (RFC 9112 §2.2), empty lines before the request line are skipped
    (b"GET /ITLFile.tlv HTTP/1.1\nConnection: close\n\n", b"200"),
    (b"\r\n\r\nGET /ITLFile.tlv HTTP/1.1\r\nConnection: close\r\n\r\n", b"200"),
    # a control character in a line of the head (a bare CR, an escape): refused, not taken as a name
    (b"GET /ITLFile.tlv HTTP/1.1\r\nX: a\rb\r\n\r\n", b"400"),
    (b"GET /ITL\x1bFile.tlv HTTP/1.1\r\n\r\n", b"400"),
])
def test_malformed_requests(request_bytes: bytes, status: bytes) -> None:
    async def main() -> None:
        async with HttpServer(FILES, HOST, 0) as srv:
            out = await raw_request(srv.port, request_bytes)
            assert out.split(b" ")[1] == status, out[:100]
            assert (b"\r\nAllow: GET, HEAD\r\n" in out) == (status == b"405")
            # the server keeps serving
            assert await http_get(HOST, srv.port, "ITLFile.tlv") == FILES["ITLFile.tlv"]
    run(main())


def test_head_and_keep_alive() -> None:
    async def main() -> None:
        async with HttpServer(FILES, HOST, 0) as srv:
            reader, writer = await asyncio.open_connection(HOST, srv.port)
            writer.write(b"HEAD /ITLFile.tlv HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"GET /SEP001122334455.cnf.xml HTTP/1.1\r\nConnection: close\r\n\r\n")
            await writer.drain()
            out = await asyncio.wait_for(reader.read(), 2)
            writer.close()
            await writer.wait_closed()
            first, _, rest = out.partition(b"\r\n\r\n")
            assert first.startswith(b"HTTP/1.1 200") and b"Content-Length: 10240" in first
            assert rest.startswith(b"HTTP/1.1 200") and rest.endswith(b"\r\n\r\n<device/>")
    run(main())


def test_last_response_of_a_connection_says_connection_close() -> None:
    """The response to the ``max_requests``-th request said ``keep-alive`` and the server then closed:
    a client pipelining more lost them without being told."""
    async def main() -> None:
        async with HttpServer(FILES, HOST, 0, max_requests=2) as srv:
            out = await raw_request(srv.port, b"HEAD /ITLFile.tlv HTTP/1.1\r\n\r\n" * 3)
            heads = [h for h in out.split(b"\r\n\r\n") if h]
            assert len(heads) == 2
            assert b"Connection: keep-alive" in heads[0] and b"Connection: close" in heads[1]
    run(main())


def test_fetchers_same_interface() -> None:
    async def main() -> None:
        async with TftpServer(FILES, HOST, 0) as tftp, HttpServer(FILES, HOST, 0) as http, \
                TftpClientPool() as pool:
            fetchers: list[Fetcher] = [
                MemoryFetcher(FILES),
                MemoryFetcher(FILES.get),
                TftpFetcher(HOST, tftp.port, blksize=1428),
                TftpFetcher(HOST, tftp.port, pool=pool),
                HttpFetcher(HOST, http.port),
                HttpThenTftpFetcher(HttpFetcher(HOST, http.port), TftpFetcher(HOST, tftp.port)),
            ]
            for f in fetchers:
                assert isinstance(f, Fetcher)
                assert await f.fetch("ITLFile.tlv") == FILES["ITLFile.tlv"]
                with pytest.raises(TransportError) as ei:
                    await f.fetch("ITLSEP001122334455.tlv")
                assert ei.value.kind == "not-found"
                with pytest.raises(TransportError) as ei:
                    await f.fetch("../secret")
                assert ei.value.kind == "refused"
    run(main())


def test_http_then_tftp_falls_back_on_connection_failure() -> None:
    async def main() -> None:
        async with TftpServer(FILES, HOST, 0) as tftp:
            closed = HttpServer(FILES, HOST, 0)
            await closed.start()
            dead_port = closed.port
            await closed.close()
            f = HttpThenTftpFetcher(HttpFetcher(HOST, dead_port, timeout=1.0), TftpFetcher(HOST, tftp.port))
            assert await f.fetch("ITLFile.tlv") == FILES["ITLFile.tlv"]
            assert f.last_transport == "tftp"
            with pytest.raises(TransportError) as ei:
                await HttpFetcher(HOST, dead_port).fetch("x")
            assert ei.value.kind == "unreachable"
    run(main())


def test_http_timeout() -> None:
    async def main() -> None:
        async def silent(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                await asyncio.sleep(5)
            finally:
                w.close()
        server = await asyncio.start_server(silent, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(TransportError) as ei:
                await http_get(HOST, port, "x", timeout=0.1)
            assert ei.value.kind == "timeout"
        finally:
            server.close()
            await server.wait_closed()
    run(main())


@contextlib.asynccontextmanager
async def _canned(response: bytes) -> AsyncIterator[int]:
    """A server answering each request head with ``response`` as it is, then closing; its port."""
    async def canned(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(response)
            await writer.drain()
        finally:
            writer.close()
    server = await asyncio.start_server(canned, HOST, 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(("response", "result"), [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\nT: 1\r\n\r\n",
     b"abcdefg"),
    (b"HTTP/1.0 200 OK\r\n\r\nuntil-eof", b"until-eof"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "protocol"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab", "protocol"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "protocol"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\nabc", "protocol"),
    (b"SPDY 200\r\n\r\n", "protocol"),
    (b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", "error"),
    # RFC 9112 strictness (module docstring of phoneemu.net.http)
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\n"
     b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b"ok"),
    (b"HTTP/1.1 100 Continue\r\n\r\n" * 9 + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "protocol"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", b"ok"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok", b"ok"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\nokxyz", "protocol"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2, 5\r\n\r\nokxyz", "protocol"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
     "protocol"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b", "protocol"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "protocol"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n2 ;ext\r\nok\r\n0\r\n\r\n", b"ok"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 2\r\nok\r\n0\r\n\r\n", "protocol"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 2\r\n\r\nok", "protocol"),
    (b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok", "protocol"),
    (b"HTTP/1.1 200 OK\r\n Content-Length: 2\r\n\r\nok", "protocol"),
    (b"HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\nContent-Length: 2\r\n\r\nok", b"ok"),
])
def test_client_parses_real_world_responses(response: bytes, result: bytes | str) -> None:
    async def main() -> None:
        async with _canned(response) as port:
            if isinstance(result, bytes):
                assert await http_get(HOST, port, "f", timeout=2) == result
            else:
                with pytest.raises(TransportError) as ei:
                    await http_get(HOST, port, "f", timeout=2)
                assert ei.value.kind == result
    run(main())


def test_random_requests_never_stop_the_server() -> None:
    import random

    rng = random.Random(99)

    async def main() -> None:
        async with HttpServer(FILES, HOST, 0, idle_timeout=0.2) as srv:
            for _ in range(40):
                junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
                if rng.random() < 0.5:
                    junk = b"GET /" + junk + b" HTTP/1.1\r\n"
                out = await raw_request(srv.port, junk + b"\r\n\r\n")
                assert out == b"" or out.split(b" ")[1] in (b"200", b"400", b"403", b"404", b"405", b"431")
            assert await http_get(HOST, srv.port, "ITLFile.tlv") == FILES["ITLFile.tlv"]
    run(main())


def test_connection_flood_is_refused_beyond_the_cap_and_service_resumes() -> None:
    async def main() -> None:
        async with HttpServer(FILES, HOST, 0, max_connections=3) as srv:
            idle = [await asyncio.open_connection(HOST, srv.port) for _ in range(3)]
            await asyncio.sleep(0.05)  # the server has accepted them
            reader, writer = await asyncio.open_connection(HOST, srv.port)  # answered at once, unread
            refused = await asyncio.wait_for(reader.read(), 2)
            writer.close()
            await writer.wait_closed()
            assert refused.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
            with pytest.raises(TransportError) as ei:  # the phone's client sees an error status
                await http_get(HOST, srv.port, "ITLFile.tlv")
            assert ei.value.code == 503 or ei.value.kind in ("error", "protocol")
            for _r, w in idle:
                w.close()
                await w.wait_closed()
            await asyncio.sleep(0.05)
            assert await http_get(HOST, srv.port, "ITLFile.tlv") == FILES["ITLFile.tlv"]
    run(main())


def test_client_that_never_reads_its_response_is_cut(caplog: pytest.LogCaptureFixture) -> None:
    """A client asking for a large file and never reading it used to hold its connection (and a
    ``max_connections`` slot) for ever: the server waited in ``drain()`` without a time limit."""
    import socket

    big = {"big.bin": os.urandom(24 * 1024 * 1024), "ITLFile.tlv": FILES["ITLFile.tlv"]}

    async def main() -> None:
        async with HttpServer(big, HOST, 0, idle_timeout=0.3, max_connections=1) as srv:
            loop = asyncio.get_running_loop()
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.setblocking(False)
                await loop.sock_connect(s, (HOST, srv.port))
                await loop.sock_sendall(s, b"GET /big.bin HTTP/1.1\r\n\r\n")
                for _ in range(100):
                    if srv._writers:
                        break
                    await asyncio.sleep(0.01)
                assert srv._writers  # being answered
                for _ in range(150):  # never read: the response stays in the server's buffers
                    if not srv._writers:
                        break
                    await asyncio.sleep(0.02)
                assert not srv._writers, "the connection of a client that reads nothing is still open"
            assert await http_get(HOST, srv.port, "ITLFile.tlv") == FILES["ITLFile.tlv"]
    with caplog.at_level("WARNING", logger="phoneemu.net.http"):
        run(main())
    words = "did not take the 200 response to 'big.bin' within 0.3s"
    assert any(words in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("request_bytes", "words"), [
    (b"GET /" + b"A" * 9000 + b" HTTP/1.1\r\n\r\n",
     "431 Request Header Fields Too Large: no blank line within 8192 bytes (max_header)"),
    (b"GET /ITLFile.tlv HTTP/1.1\r\nHost: x\r\n", "cut at byte 36: connection closed before the blank line"),
], ids=["oversized-head", "truncated-head"])
def test_oversized_and_truncated_heads_are_logged(request_bytes: bytes, words: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """Both used to be answered (431, 400) without a word in the log about why."""
    async def main() -> None:
        async with HttpServer(FILES, HOST, 0) as srv:
            reader, writer = await asyncio.open_connection(HOST, srv.port)
            writer.write(request_bytes)
            await writer.drain()
            writer.write_eof()
            await asyncio.wait_for(reader.read(), 2)
            writer.close()
            await writer.wait_closed()
            assert await http_get(HOST, srv.port, "ITLFile.tlv") == FILES["ITLFile.tlv"]

    with caplog.at_level("INFO", logger="phoneemu.net.http"):
        run(main())
    assert any(words in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_a_head_begun_and_not_ended_in_time_is_answered_408_and_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    """A slow or stalled client (a byte now and then, no empty line) was closed at the idle time-out
    without an answer or a word in the log; an idle keep-alive connection is still closed silently."""
    async def main() -> None:
        async with HttpServer(FILES, HOST, 0, idle_timeout=0.3) as srv:
            reader, writer = await asyncio.open_connection(HOST, srv.port)
            writer.write(b"GET /ITLFile.tlv HTTP/1.1\r\nHost: x")
            await writer.drain()
            out = await asyncio.wait_for(reader.read(), 3)
            assert out.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), out[:80]
            writer.close()
            reader, writer = await asyncio.open_connection(HOST, srv.port)  # a slower one: no whole line
            writer.write(b"GET /ITL")
            assert (await asyncio.wait_for(reader.read(), 3)).startswith(b"HTTP/1.1 408 ")
            writer.close()
            reader, writer = await asyncio.open_connection(HOST, srv.port)  # keep-alive, then idle
            writer.write(b"GET /ITLFile.tlv HTTP/1.1\r\n\r\n")
            out = await asyncio.wait_for(reader.read(), 3)
            assert out.startswith(b"HTTP/1.1 200 OK\r\n") and b" 408 " not in out, out[:80]
            writer.close()

    with caplog.at_level("INFO", logger="phoneemu.net.http"):
        run(main())
    said = [r.getMessage() for r in caplog.records if "408 Request Timeout" in r.getMessage()]
    assert len(said) == 2 and all("no complete request head within 0.3s" in m for m in said), said


def test_a_malformed_header_is_named_by_its_line() -> None:
    async def main() -> None:
        async def canned(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nServer: x\r\nbroken\r\n\r\n")
            await writer.drain()
            writer.close()
        server = await asyncio.start_server(canned, HOST, 0)
        try:
            with pytest.raises(TransportError, match=r"header line 3: malformed field 'broken'"):
                await http_get(HOST, server.sockets[0].getsockname()[1], "f", timeout=2)
        finally:
            server.close()
            await server.wait_closed()
    run(main())


def test_connection_storm_waits_in_the_listen_queue_not_in_syn_retransmission() -> None:
    """A fleet opens hundreds of connections at once: all complete (the kernel's accept queue holds
    them) while the server's loop is busy — with asyncio's default backlog of 100 the rest were
    dropped and waited 1 s for TCP's SYN retransmission."""
    import select
    import socket
    import time

    storm = 300

    async def main() -> None:
        async with HttpServer(FILES, HOST, 0) as srv:
            socks = []
            try:
                for _ in range(storm):  # the loop is blocked here: nothing is accepted meanwhile
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.setblocking(False)
                    s.connect_ex((HOST, srv.port))
                    socks.append(s)
                poller = select.poll()  # not select(): descriptors may exceed FD_SETSIZE
                pending = {s.fileno(): s for s in socks}
                for fd in pending:
                    poller.register(fd, select.POLLOUT)
                deadline = time.monotonic() + 0.5
                while pending and time.monotonic() < deadline:
                    for fd, _event in poller.poll(50):
                        poller.unregister(fd)
                        del pending[fd]
                connected = sum(1 for s in socks if s.fileno() not in pending
                                and s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0)
                assert connected == storm, f"{storm - connected} of {storm} connections not established"
            finally:
                for s in socks:
                    s.close()
            assert await http_get(HOST, srv.port, "ITLFile.tlv") == FILES["ITLFile.tlv"]
    run(main())


def test_a_provider_that_fails_or_serves_too_much_is_answered_and_the_server_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    """A provider raising is a 500 (logged with its traceback), one raising TransportError or returning
    more than ``max_file_size`` a 413; callbacks that raise are logged; the next request is served."""
    def provider(name: str) -> bytes | None:
        if name == "boom":
            raise RuntimeError("disk on fire")
        if name == "limit":
            raise TransportError("above the provider's limit", kind="too-large")
        if name == "big":
            return b"b" * 2048
        return FILES.get(name)

    def on_request(_peer: tuple[str, int], _method: str, name: str, _status: int) -> None:
        if name == "SEP001122334455.cnf.xml":
            raise ValueError("logging callback broken")

    async def main() -> None:
        async with HttpServer(provider, HOST, 0, max_file_size=1024, on_request=on_request) as srv:
            for name, code in (("boom", 500), ("limit", 413), ("big", 413)):
                with pytest.raises(TransportError) as ei:
                    await http_get(HOST, srv.port, name)
                assert ei.value.code == code, (name, ei.value)
            assert await http_get(HOST, srv.port, "SEP001122334455.cnf.xml") == b"<device/>"
            assert await http_get(HOST, srv.port, "dir/a b.txt") == b"sp"

    with caplog.at_level("ERROR"):
        run(main())
    logged = [r.getMessage() for r in caplog.records]
    assert any("provider failed for 'boom'" in m for m in logged), logged
    assert any("on_request callback failed" in m for m in logged), logged


@pytest.mark.parametrize(("response", "kind", "words"), [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nabcdefgh\r\n8\r\nijklmnop\r\n0\r\n\r\n",
     "too-large", "body above 12 bytes"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcdXY0\r\n\r\n", "protocol",
     "chunk not followed by CRLF"),
    (b"HTTP/1.0 200 OK\r\n\r\n" + b"e" * 13, "too-large", "body above 12 bytes"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n" + b"e" * 13, "too-large", ""),
])
def test_client_bounds_a_body_whatever_its_framing(response: bytes, kind: str, words: str) -> None:
    async def main() -> None:
        async with _canned(response) as port:
            with pytest.raises(TransportError) as ei:
                await http_get(HOST, port, "f", timeout=2, max_size=12)
            assert ei.value.kind == kind and words in str(ei.value), ei.value
    run(main())
