"""The lab's servers under a connection flood (red team RL2), over loopback sockets.

Rules under test: refused connections are logged at most once a second per server with their exact count,
the first at once, the last partial interval when the flood ends or the server closes
(:mod:`phoneemu.net._refusals`; was: a line each — 275,732 lines in a 30 s CAPF flood); a TLS server's
close aborts the connection when the client takes less than 1 KiB of what is still unsent
(:data:`phoneemu.net._taken.TAKEN_PER_IDLE`, all of it when fewer) in a
:data:`phoneemu.net.tls.CLOSE_WAIT_S`, so a client that never reads is cut (was: left open); the HTTP
server's 503 at its cap reaches a client that sent its request and reads to the end (was: closed with the
request unread, the connection reset and the 503 lost); the lab logs no line of its own for each 503
refusal, its request-log entry kept.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Callable

import pytest

from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.net._refusals import RefusalLog
from phoneemu.net.http import HttpServer
from phoneemu.net.tls import TlsServer
from tests.helpers import lab_template, self_signed_server_context
from tests.polling import poll_until

HOST = "127.0.0.1"
FLOOD = 300
FILES = {"ITLFile.tlv": b"itl"}
#: how long a test waits for the servers to get somewhere (polled; many times the 1 s log interval)
WAIT_S = 10.0
SMALL_BUFFER = 4096

template = lab_template("flood-log", seed=41, phones={})


async def _until(check: Callable[[], bool], what: str) -> None:
    """:func:`tests.polling.poll_until` within :data:`WAIT_S`."""
    await poll_until(check, what, within=WAIT_S, every=0.02)


def _refusal_lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and "refus" in r.getMessage()]


def _count_of(line: str) -> int:
    """The refusals one log line says: ``refused a connection from ...`` is one, ``refused 12,345
    connections in the last 1.0 s`` its count."""
    counted = re.search(r"refused ([\d,]+) connections? in the last \d+\.\d s: pool full", line)
    if counted:
        return int(counted.group(1).replace(",", ""))
    assert re.search(r"refused a connection from 127\.0\.0\.1:\d+: pool full", line), line
    return 1


def _said(caplog: pytest.LogCaptureFixture, logger: str) -> int:
    return sum(_count_of(line) for line in _refusal_lines(caplog, logger))


def _bound(elapsed: float) -> int:
    """Lines a flood of ``elapsed`` seconds may give: the first at once, one a second, the last partial."""
    return 2 + int(elapsed)


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "tcp"])
def test_a_tls_server_says_a_flood_once_a_second_with_the_exact_count(
        tls: bool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="phoneemu.net.tls")
    ctx = self_signed_server_context("flood", 1) if tls else None

    async def never_called(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(WAIT_S)  # holds its place (plain TCP)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        # (the held connection never counts as silent past its grace: the flood is refused, not given room)
        async with TlsServer(never_called, ctx, HOST, 0, name="capf", max_connections=1,
                             first_request_grace=WAIT_S, handshake_timeout=WAIT_S) as srv:
            held = await asyncio.open_connection(HOST, srv.port)  # no ClientHello: holds the one place
            await _until(lambda: len(srv._active) == 1, "the first connection held")
            started = loop.time()
            for _ in range(FLOOD):
                _r, w = await asyncio.open_connection(HOST, srv.port)
                w.close()
            await _until(lambda: srv.refused == FLOOD, "every connection of the flood refused")
            # the flood over, its last interval is said by the timer, not only at the close
            await _until(lambda: _said(caplog, "phoneemu.net.tls") == FLOOD, "every refusal said")
            elapsed = loop.time() - started
            lines = _refusal_lines(caplog, "phoneemu.net.tls")
            assert 2 <= len(lines) <= _bound(elapsed), (len(lines), elapsed, lines[:3])
            assert lines[0].startswith("capf: refused a connection from 127.0.0.1:")
            assert "pool full (1 open, max_connections 1)" in lines[-1]
            held[1].close()
        assert _said(caplog, "phoneemu.net.tls") == FLOOD  # the close said nothing twice

    asyncio.run(main())


def test_an_http_server_says_a_flood_once_a_second_and_tells_each_503(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="phoneemu.net.http")
    told: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with HttpServer(FILES, HOST, 0, max_connections=1, idle_timeout=WAIT_S,
                              on_request=lambda _p, _m, _n, status: told.append(status)) as srv:
            held = await asyncio.open_connection(HOST, srv.port)
            await _until(lambda: len(srv._writers) == 1, "the first connection held")
            started = loop.time()
            for _ in range(FLOOD):
                reader, writer = await asyncio.open_connection(HOST, srv.port)
                answer = await asyncio.wait_for(reader.read(), WAIT_S)
                writer.close()
                assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer[:60]
            await _until(lambda: _said(caplog, "phoneemu.net.http") == FLOOD, "every refusal said")
            elapsed = loop.time() - started
            lines = _refusal_lines(caplog, "phoneemu.net.http")
            assert 2 <= len(lines) <= _bound(elapsed), (len(lines), elapsed, lines[:3])
            assert srv.refusals.total == FLOOD
            held[1].close()
        assert told == [503] * FLOOD  # each refusal is still told (a request log keeps its entry)

    asyncio.run(main())


def test_a_client_over_the_cap_that_sent_its_request_reads_the_503() -> None:
    """The request is in the server's socket before the server accepts (a phone sends its GET at once):
    closed with it unread, the connection was reset, and a client reading to the end lost the 503."""
    async def main() -> None:
        async with HttpServer(FILES, HOST, 0, max_connections=1, idle_timeout=WAIT_S) as srv:
            held = await asyncio.open_connection(HOST, srv.port)
            await _until(lambda: len(srv._writers) == 1, "the first connection held")
            sock = socket.create_connection((HOST, srv.port), timeout=WAIT_S)  # (blocking: the loop waits)
            sock.sendall(b"GET /ITLFile.tlv HTTP/1.1\r\nHost: lab\r\n\r\n")
            sock.setblocking(False)
            reader, writer = await asyncio.open_connection(sock=sock)
            answer = await asyncio.wait_for(reader.read(), WAIT_S)
            assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer[:60]
            writer.close()
            await _until(lambda: not srv._refusing, "the refused connection let go")
            held[1].close()

    asyncio.run(main())


def test_a_refused_client_that_never_ends_its_side_is_closed_after_the_linger() -> None:
    async def main() -> None:
        async with HttpServer(FILES, HOST, 0, max_connections=1, idle_timeout=0.3) as srv:
            held = await asyncio.open_connection(HOST, srv.port)
            await _until(lambda: len(srv._writers) == 1, "the first connection held")
            reader, writer = await asyncio.open_connection(HOST, srv.port)
            await _until(lambda: len(srv._refusing) == 1, "the refused connection read to its end")
            await _until(lambda: not srv._refusing, "the refused connection closed after 0.3 s")
            answer = await asyncio.wait_for(reader.read(), WAIT_S)
            assert answer.startswith(b"HTTP/1.1 503 ")
            writer.close()
            held[1].close()

    asyncio.run(main())


def test_a_tls_server_close_whose_last_bytes_are_not_taken_is_aborted(
        caplog: pytest.LogCaptureFixture) -> None:
    """The handler ends with megabytes unsent to a client that never reads: the close waited 1 s and gave
    up, leaving the connection open (its descriptor held) while the client did not read."""
    caplog.set_level(logging.WARNING, logger="phoneemu.net.tls")
    unsent = 4 * 1024 * 1024

    async def write_and_end(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        w.write(bytes(unsent))  # no drain: the rest stays in the transport's buffer

    async def main() -> None:
        async with TlsServer(write_and_end, None, HOST, 0, name="sip") as srv:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
            sock.setblocking(False)
            try:
                await asyncio.get_running_loop().sock_connect(sock, (HOST, srv.port))
                await _until(lambda: "connection aborted" in caplog.text, "the close cut")
                await _until(lambda: not srv._active, "the connection let go")
                # read in a thread: the abort closes the server's socket in a later turn of this loop
                # (asyncio's connection_lost), which a read blocking the loop held back — no end of
                # stream, the read timed out (4 of 40 under load)
                got = await asyncio.to_thread(_bytes_until_the_end, sock)
                assert got < unsent  # cut, not all sent after the client began
            finally:
                sock.close()
        assert "did not take the last" in caplog.text and "within 1s of the end" in caplog.text

    asyncio.run(main())


def _bytes_until_the_end(sock: socket.socket) -> int:
    """Bytes read from ``sock`` until its end of stream or reset (bounded loop)."""
    sock.setblocking(True)
    sock.settimeout(WAIT_S)
    got = 0
    try:
        for _ in range(100_000):
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += len(chunk)
    except ConnectionResetError:
        pass
    return got


def test_the_lab_keeps_each_503_refusal_in_its_request_log_with_no_line_each(
        cluster: LabCluster, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="phoneemu.lab.servers")
    refused = 5

    async def main() -> None:
        async with LabServers(cluster, io_timeout=5.0) as servers:
            assert servers.http is not None
            http = servers.http
            http.max_connections = 1
            port = servers.ports["http"]
            held = await asyncio.open_connection(HOST, port)
            await _until(lambda: len(http._writers) == 1, "the first connection held")
            for _ in range(refused):
                reader, writer = await asyncio.open_connection(HOST, port)
                assert (await asyncio.wait_for(reader.read(), WAIT_S)).startswith(b"HTTP/1.1 503 ")
                writer.close()
            held[1].close()
            entries = [r for r in servers.requests if r.service == "http" and r.detail == "HTTP 503"]
            assert len(entries) == refused
        lab_lines = [r.getMessage() for r in caplog.records if r.name == "phoneemu.lab.servers"]
        per_refusal = [line for line in lab_lines if line.startswith("http:") and line.endswith(": 503")]
        assert not per_refusal, lab_lines

    asyncio.run(main())



def test_after_a_quiet_interval_the_next_refusal_is_said_at_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="phoneemu.test.flood_log")
    logger = logging.getLogger("phoneemu.test.flood_log")

    async def main() -> None:
        said = RefusalLog(logger, "capf", interval=0.05)
        for n in range(4):
            said.refused(f"127.0.0.1:{n + 1}", "pool full (1 open, max_connections 1)")
        assert len(_refusal_lines(caplog, logger.name)) == 1  # the first at once, the rest counted
        await _until(lambda: _said(caplog, logger.name) == 4, "the interval's count said by its timer")
        await asyncio.sleep(0.2)  # an interval with none: the flood is over
        lines = len(_refusal_lines(caplog, logger.name))
        said.refused("127.0.0.1:9", "pool full (1 open, max_connections 1)")
        assert _refusal_lines(caplog, logger.name)[lines:] == [
            "capf: refused a connection from 127.0.0.1:9: pool full (1 open, max_connections 1)"]
        said.flush()
        assert said.total == _said(caplog, logger.name) == 5

    asyncio.run(main())
