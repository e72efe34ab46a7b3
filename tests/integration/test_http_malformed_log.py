"""Malformed requests on HTTP 6970 in the log, over loopback sockets (:mod:`phoneemu.net.http` rules).

Rules under test: a malformed request (400, 405, 431; 408 for a head begun and not ended) is a WARNING line
naming its peer, status and why — said at ``lab serve``'s default level, as a refused path is (was: INFO,
nothing) —, a flood of them at most a line a second with their exact count by status, the last partial
interval at the server's close (:class:`phoneemu.net.tls.FailureLog`); each is still a line at INFO.
"""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from phoneemu.net.http import HttpServer
from tests.helpers import run
from tests.integration.test_http import raw_request  # one request, what came back until the close

HOST = "127.0.0.1"
FILES = {"a.txt": b"AAAA"}
LOGGER = "phoneemu.net.http"
FLOOD = 150
BAD = {400: b"GET /a.txt HTTP/1.1x\r\n\r\n", 405: b"POST /a.txt HTTP/1.1\r\n\r\n",
       431: b"GET /" + b"A" * 9000 + b" HTTP/1.1\r\n\r\n"}


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


@pytest.mark.parametrize(("status", "why"), [
    (400, "400 Bad Request: malformed request line 'GET /a.txt HTTP/1.1x'"),
    (405, "405 Method Not Allowed: method 'POST' not allowed"),
    (431, "431 Request Header Fields Too Large: no blank line within 8192 bytes (max_header)"),
])
def test_a_malformed_request_is_a_warning_naming_peer_status_and_why(
        status: int, why: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)

    async def main() -> None:
        async with HttpServer(FILES, HOST, 0, idle_timeout=2.0) as srv:
            out = await raw_request(srv.port, BAD[status])
            assert out.startswith(b"HTTP/1.1 %d " % status), out[:80]

    run(main())
    lines = _warnings(caplog)
    assert len(lines) == 1 and re.fullmatch(r"http: 127\.0\.0\.1:\d+: " + re.escape(why), lines[0]), lines


def test_a_head_begun_and_not_ended_in_time_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)

    async def main() -> None:
        async with HttpServer(FILES, HOST, 0, idle_timeout=0.3) as srv:
            reader, writer = await asyncio.open_connection(HOST, srv.port)
            writer.write(b"GET /a.txt HTTP/1.1\r\nHost: x")
            assert (await asyncio.wait_for(reader.read(), 3)).startswith(b"HTTP/1.1 408 ")
            writer.close()

    run(main())
    lines = _warnings(caplog)
    said = r"http: 127\.0\.0\.1:\d+: 408 Request Timeout: no complete request head within 0\.3s"
    assert len(lines) == 1 and re.fullmatch(said, lines[0]), lines


def test_a_flood_of_malformed_requests_is_said_once_a_second_with_its_count_by_status(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        async with HttpServer(FILES, HOST, 0, idle_timeout=2.0) as srv:
            started = loop.time()
            for n in range(FLOOD):
                status = (400, 405, 431)[n % 3]
                out = await raw_request(srv.port, BAD[status])
                assert out.startswith(b"HTTP/1.1 %d " % status), out[:80]
            elapsed = loop.time() - started
            assert srv.malformed.total == FLOOD
        return elapsed  # the close says the last, partial interval

    elapsed = run(main())
    lines = _warnings(caplog)
    assert 2 <= len(lines) <= 2 + int(elapsed), (len(lines), elapsed, lines[:3])
    assert re.fullmatch(r"http: 127\.0\.0\.1:\d+: 400 Bad Request: .+", lines[0]), lines[0]
    by_status = {400: 0, 405: 0, 431: 0}  # (the first, said at once, is a 400)
    for line in lines[1:]:
        counted = re.fullmatch(r"http: ([\d,]+) malformed requests? in the last \d+\.\d s \((.+)\)", line)
        assert counted, line
        kinds = dict(kind.split(" ") for kind in counted.group(2).split(", "))
        assert all(re.fullmatch(r"\d{3}", k) and re.fullmatch(r"[\d,]+", n) for k, n in kinds.items()), kinds
        assert sum(int(n.replace(",", "")) for n in kinds.values()) == int(counted.group(1).replace(",", ""))
        for kind, n in kinds.items():
            by_status[int(kind)] += int(n.replace(",", ""))
    assert by_status == {400: FLOOD // 3 - 1, 405: FLOOD // 3, 431: FLOOD // 3}, by_status
    each = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.INFO
            and re.match(r"http: 127\.0\.0\.1:\d+: \d{3} ", r.getMessage())]
    assert len(each) == FLOOD - 1  # nothing lost: every one at INFO besides (lab serve -v)
