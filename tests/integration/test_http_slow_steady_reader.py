"""The lab HTTP server serves a client that reads slowly but steadily, and still cuts one that stops
(:mod:`phoneemu.net.http` rules): the connection is aborted when the client takes less than
``TAKEN_PER_IDLE`` bytes of what waits unsent within an ``idle_timeout`` — was: each 256 KiB piece of a
response, and what was unsent at the close, had to be taken whole within ``idle_timeout``, so a phone at a
remote site reading a firmware load at less than ~26 KB/s (256 KiB / 10 s) was cut though it kept reading.

Over real loopback sockets, the client's receive buffer small (:func:`tests.sip_helpers.connect_not_reading`)
and the server's send buffer set (loopback's default holds megabytes: the server would wait for nothing).
``idle_timeout`` is :data:`IDLE` so the tests are short; the client (:mod:`tests.slow_reader_helpers`)
reads 2 KiB every 50 ms — about 40 KB/s, some 20 KB an ``idle_timeout``: far above ``TAKEN_PER_IDLE``
however loaded the machine, well below the 100 KB/s and more the old rule asked here (some 50 KiB of a
piece, or all that was unsent at the close, within 0.5 s): about the ratio of a phone reading 8 KB/s to
the old 26 KB/s at the default 10 s. No elapsed time is asserted of the slow reader: that the whole file
came and nothing was cut is.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import pytest

from phoneemu.net.http import HttpServer
from tests.sip_helpers import SLOW_HOST, SMALL_BUFFER, connect_not_reading
from tests.slow_reader_helpers import raw_recv, read_steadily, seconds_until_let_go, serve_to

IDLE = 0.5
FILE = os.urandom(112 * 1024)  # one piece, under 3 s at the client's rate: far longer than IDLE
WAIT_S = 5.0  # how long a test waits for the server to let a connection go (polled)


def _request(keep: bool) -> bytes:
    connection = "keep-alive" if keep else "close"
    return f"GET /fw.bin HTTP/1.1\r\nHost: x\r\nConnection: {connection}\r\n\r\n".encode()


def _response_size(size: int, keep: bool) -> int:
    """The response's size in bytes: the head as :class:`HttpServer` writes it, then ``size`` bytes."""
    head = (f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nContent-Type: application/octet-stream\r\n"
            f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n")
    return len(head) + size


#: (file size, keep-alive, the server's send buffer); each makes the server wait for the client where said
CASES = {
    # one piece's drain: what the kernel does not hold is above asyncio's 64 KiB mark (then, kept alive,
    # the connection idle for the next request while the client still reads: the close)
    "piece-drained": (96 * 1024, True, SMALL_BUFFER),
    # below that mark: no drain, but most of it unsent when the connection ends (Connection: close)
    "unsent-at-close": (40 * 1024, False, SMALL_BUFFER),
    # a send buffer the kernel refills only when a third of it is acknowledged, less often than IDLE at
    # the client's rate: its queue shrinking is the progress (was cut, measuring the buffer alone)
    "kernel-queue": (112 * 1024, False, 49152),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_client_reading_slowly_but_steadily_gets_the_whole_file(
        case: str, caplog: pytest.LogCaptureFixture) -> None:
    if case == "kernel-queue" and not sys.platform.startswith("linux"):
        pytest.skip("the kernel's send queue is read on Linux only (SIOCOUTQ)")
    caplog.set_level(logging.WARNING, logger="phoneemu.net.http")
    size, keep, send_buffer = CASES[case]

    async def main() -> tuple[int, str]:
        async with HttpServer({"fw.bin": FILE[:size]}, SLOW_HOST, 0, idle_timeout=IDLE) as srv:
            sock = await connect_not_reading(srv.port)
            try:
                await serve_to(srv, sock, _request(keep), send_buffer=send_buffer, within=WAIT_S)
                want = _response_size(size, keep)
                return await read_steadily(raw_recv(sock), lambda got: len(got) >= want)
            finally:
                sock.close()

    read, ended = asyncio.run(main())
    assert ended == "all came", (read, ended, caplog.text)
    assert "connection aborted" not in caplog.text


@pytest.mark.parametrize("case", ["piece-drained", "unsent-at-close"])
def test_a_client_that_stops_reading_is_still_cut_about_idle_timeout_after(
        case: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="phoneemu.net.http")
    size, keep, send_buffer = CASES[case]
    words = "did not take the 200 response to 'fw.bin' within" if case == "piece-drained" else \
        "did not take the last"

    async def main() -> float:
        async with HttpServer({"fw.bin": FILE[:size]}, SLOW_HOST, 0, idle_timeout=IDLE) as srv:
            sock = await connect_not_reading(srv.port)
            try:
                await serve_to(srv, sock, _request(keep), send_buffer=send_buffer, within=WAIT_S)
                return await seconds_until_let_go(raw_recv(sock), lambda: not srv._writers, within=WAIT_S)
            finally:
                sock.close()

    took = asyncio.run(main())
    assert words in caplog.text and "connection aborted" in caplog.text, caplog.text
    assert took < 2 * IDLE + 1.0, took  # a bound (cut ~1.25 IDLE after its last bytes; load), not a figure
