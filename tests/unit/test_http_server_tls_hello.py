"""A TLS ClientHello on the lab's plain HTTP port (6970), over loopback sockets.

Rules under test (:mod:`phoneemu.net.http`, module docstring): a connection whose first bytes are a TLS
handshake record (``16 03 00``..``16 03 04``) is answered at once with a plaintext fatal
``protocol_version`` alert, our side ended, the rest of the hello read until the client's end (no reset
that could lose the alert); it is logged as a refusal naming HTTPS 6971 (spec §H.1), one line per
connection at most, a flood's at most once a second with their exact count; ``on_request`` is not told.
Was: held until ``idle_timeout`` (10 s), then an HTTP 408 a TLS client cannot read.
A start that is not a TLS record, 0x16 included, is read as a request as before.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import socket
import ssl

import pytest

from phoneemu.net.http import HttpServer, http_get
from tests.helpers import run, tcp_exchange
from tests.polling import poll_until

HOST = "127.0.0.1"
FILES = {"a.txt": b"AAAA"}
#: what a TLS client gets at once: an alert record, version 3.1, fatal (2) protocol_version (70)
ALERT = bytes((0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 70))
#: well below the server's default idle_timeout (10 s), what the old code waited before its 408
AT_ONCE_S = 3.0
LOGGER = "phoneemu.net.http"


def _client_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _hello_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == LOGGER and "TLS ClientHello" in r.getMessage()]


def _count_of(line: str) -> int:
    """The hellos one line says: ``refused a connection from ...`` is one, ``refused N connections`` N."""
    counted = re.search(r"refused ([\d,]+) connections? in the last \d+\.\d s: a TLS ClientHello", line)
    if counted:
        return int(counted.group(1).replace(",", ""))
    assert re.search(r"refused a connection from 127\.0\.0\.1:\d+: a TLS ClientHello", line), line
    return 1


def _client_hello_record(size: int = 512) -> bytes:
    """A TLS 1.0-record handshake record of ``size`` body bytes (a ClientHello's shape, its content junk)."""
    return bytes((0x16, 0x03, 0x01)) + size.to_bytes(2, "big") + bytes((0x01,)) + b"\x00" * (size - 1)


def test_a_python_tls_client_is_told_protocol_version_at_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    told: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with HttpServer(FILES, HOST, 0,
                              on_request=lambda _p, _m, _n, status: told.append(status)) as srv:
            started = loop.time()
            with pytest.raises(ssl.SSLError) as caught:
                await asyncio.wait_for(asyncio.open_connection(HOST, srv.port, ssl=_client_context()),
                                       AT_ONCE_S)
            assert caught.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", caught.value
            assert loop.time() - started < AT_ONCE_S
            assert await http_get(HOST, srv.port, "a.txt") == b"AAAA"  # still serving

    run(main())
    lines = _hello_lines(caplog)
    assert len(lines) == 1, lines  # one connection, one line
    assert re.fullmatch(r"http: refused a connection from 127\.0\.0\.1:\d+: a TLS ClientHello on this "
                        r"plain HTTP port \(HTTPS config download is TCP 6971 on CUCM, spec §H\.1\): "
                        r"answered with a TLS protocol_version alert", lines[0]), lines[0]
    assert [r.levelno for r in caplog.records if "TLS ClientHello" in r.getMessage()] == [logging.WARNING]
    assert told == [200]  # the hello is no HTTP request: no status told (the GET after it is)


@pytest.mark.parametrize("version", [0, 1, 3, 4], ids=["ssl3", "tls1.0", "tls1.2", "tls1.3"])
def test_a_handshake_record_gets_the_alert_then_our_end_not_a_reset(version: int) -> None:
    """The alert is all the client gets, then our end of stream once it has sent its hello and ended its
    side: the hello is read, not left unread (a close with unread bytes resets, the alert could be lost)."""
    async def main() -> None:
        async with HttpServer(FILES, HOST, 0) as srv:
            for size in (512, 6000):  # a hello larger than one read of the 503 refusal's linger
                record = bytearray(_client_hello_record(size))
                record[2] = version
                reader, writer = await asyncio.open_connection(HOST, srv.port)
                writer.write(bytes(record))
                await writer.drain()
                got = await asyncio.wait_for(reader.readexactly(len(ALERT)), AT_ONCE_S)
                assert got == ALERT
                writer.write_eof()  # what a TLS client does on a fatal alert: it closes
                assert await asyncio.wait_for(reader.read(), AT_ONCE_S) == b""  # our end, no reset
                writer.close()

    run(main())


def test_the_alert_comes_before_the_client_sends_the_rest_of_its_hello() -> None:
    """Three bytes are enough: the answer does not wait for the record (a slow link, a cut hello)."""
    async def main() -> None:
        async with HttpServer(FILES, HOST, 0) as srv:
            reader, writer = await asyncio.open_connection(HOST, srv.port)
            writer.write(b"\x16\x03\x01")
            await writer.drain()
            assert await asyncio.wait_for(reader.readexactly(len(ALERT)), AT_ONCE_S) == ALERT
            writer.close()

    run(main())


@pytest.mark.parametrize("start", [
    b"\x16\x03\x05",  # a record version past 3.4: not a TLS handshake record
    b"\x16\x02\x01",
    b"\x16GET /a.txt",
    b"\x17\x03\x01",  # application data, not a handshake
], ids=["v3.5", "v2.1", "0x16-then-get", "appdata"])
def test_a_start_that_is_not_a_tls_handshake_record_is_read_as_a_request(
        start: bytes, caplog: pytest.LogCaptureFixture) -> None:
    """A control character in the head: the 400 of the module rules, as before, not the alert."""
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def main() -> None:
        async with HttpServer(FILES, HOST, 0) as srv:
            request = start + b" HTTP/1.1\r\nHost: x\r\n\r\n"
            out, _end = await tcp_exchange(HOST, srv.port, request, wait=AT_ONCE_S)
            assert out.startswith(b"HTTP/1.1 400 "), out[:80]

    run(main())
    assert not _hello_lines(caplog)


@pytest.mark.parametrize("request_bytes", [
    b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\r\n\r\nGET /a.txt HTTP/1.1\r\n\r\n",  # empty lines before the request line are skipped (RFC 9112 §2.2)
    b"\nGET /a.txt HTTP/1.1\n\n",  # bare LF line ends
    b"G\r\n\r\n",  # a one-byte request line: still 400, not a hang
], ids=["plain", "leading-crlf", "bare-lf", "one-byte"])
def test_the_first_request_of_a_connection_is_read_whole_after_the_look_at_its_first_byte(
        request_bytes: bytes) -> None:
    async def main() -> None:
        async with HttpServer(FILES, HOST, 0, idle_timeout=AT_ONCE_S) as srv:
            reader, writer = await asyncio.open_connection(HOST, srv.port)
            for byte in request_bytes:  # one byte at a time: the look at the first byte loses none
                writer.write(bytes((byte,)))
                await writer.drain()
                await asyncio.sleep(0)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), AT_ONCE_S)
            writer.close()
            if request_bytes == b"G\r\n\r\n":
                assert head.startswith(b"HTTP/1.1 400 "), head
            else:
                assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: 4\r\n" in head, head

    run(main())


def test_a_hello_flood_is_said_once_a_second_with_the_exact_count(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    flood = 200

    async def main() -> float:
        loop = asyncio.get_running_loop()
        async with HttpServer(FILES, HOST, 0) as srv:
            started = loop.time()
            for _ in range(flood):
                out, end = await tcp_exchange(HOST, srv.port, _client_hello_record(), wait=AT_ONCE_S)
                assert (out, end) == (ALERT, "eof")
            elapsed = loop.time() - started
            assert srv.tls_hellos.total == flood
            assert srv.refusals.total == 0  # the pool-full refusals are their own
        return elapsed

    elapsed = run(main())
    lines = _hello_lines(caplog)
    assert sum(_count_of(line) for line in lines) == flood  # every one said (the last at the close)
    assert 1 <= len(lines) <= 2 + int(elapsed), (len(lines), elapsed, lines[:3])


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl")
def test_curl_says_the_alert_at_once() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with HttpServer(FILES, HOST, 0) as srv:
            started = loop.time()
            proc = await asyncio.create_subprocess_exec(
                "curl", "-sS", "--max-time", "8", f"https://{HOST}:{srv.port}/a.txt",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            try:
                _out, err = await asyncio.wait_for(proc.communicate(), 10)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            assert proc.returncode == 35, (proc.returncode, err)  # CURLE_SSL_CONNECT_ERROR
            assert b"alert protocol version" in err, err
            assert loop.time() - started < AT_ONCE_S

    run(main())


def test_a_plain_socket_that_closes_after_its_hello_leaves_the_server_serving() -> None:
    """A client gone at once (a scanner): no error escapes, nothing held."""
    async def main() -> None:
        async with HttpServer(FILES, HOST, 0) as srv:
            for _ in range(5):
                with socket.create_connection((HOST, srv.port), timeout=AT_ONCE_S) as sock:
                    sock.sendall(_client_hello_record())
            assert await http_get(HOST, srv.port, "a.txt") == b"AAAA"
            await poll_until(lambda: not srv._writers, "every connection closed", within=AT_ONCE_S,
                             every=0.02)

    run(main())
