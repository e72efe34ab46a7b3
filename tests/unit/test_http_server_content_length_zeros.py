"""The HTTP server's request Content-Length, over loopback sockets (:mod:`phoneemu.net.http`).

Rules under test: a Content-Length is ``1*DIGIT`` (RFC 9110 §8.6), so ``00`` and ``000`` are a valid 0, no
body, and the request is served (was: 400); a value that is not digits alone (a sign, a list, empty,
``0x0``), a value above 0 (no request body is accepted) and repeats that differ stay 400 with the
connection closed, every line checked.
"""

from __future__ import annotations

import pytest

from phoneemu.net.http import HttpServer
from tests.helpers import run, tcp_exchange

HOST = "127.0.0.1"
FILES = {"a.txt": b"AAAA"}
WAIT_S = 3.0


async def _exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, return all the server sends until it closes (:func:`tests.helpers.tcp_exchange`): an
    end, not a reset."""
    out, ended = await tcp_exchange(HOST, port, data, wait=WAIT_S)
    assert ended == "eof", (ended, out[:120])
    return out


def _request(*lengths: str) -> bytes:
    fields = "".join(f"Content-Length: {v}\r\n" for v in lengths)
    return f"GET /a.txt HTTP/1.1\r\nHost: x\r\n{fields}Connection: close\r\n\r\n".encode()


@pytest.mark.parametrize("lengths", [
    ("00",), ("000",), ("0" * 40,), ("0", "00"), ("000", "000"), (" 00 ",)],
    ids=["00", "000", "40-zeros", "0-then-00", "000-twice", "00-with-ows"])
def test_a_content_length_of_zeros_is_0_and_the_request_served(lengths: tuple[str, ...]) -> None:
    async def main() -> None:
        async with HttpServer(FILES, HOST, 0) as srv:
            out = await _exchange(srv.port, _request(*lengths))
            assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\nAAAA"), out[:120]

    run(main())


@pytest.mark.parametrize("lengths", [
    ("",), ("+0",), ("-0",), ("0x0",), ("0 0",), ("0, 0",), ("1",), ("01",), ("0", "1"), ("00", "4"),
    ("\uff10",)],  # a fullwidth zero: a digit to str.isdigit, not to RFC 9110 (and a non-ASCII head)
    ids=["empty", "plus", "minus", "hex", "two-words", "list", "one", "01", "0-then-1", "00-then-4",
         "fullwidth"])
def test_a_content_length_other_than_zeros_is_400_and_closed(lengths: tuple[str, ...]) -> None:
    async def main() -> None:
        async with HttpServer(FILES, HOST, 0) as srv:
            out = await _exchange(srv.port, _request(*lengths) + b"GET /a.txt HTTP/1.1\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 400 Bad Request\r\n"), out[:120]
            assert out.count(b"HTTP/1.1 ") == 1 and b"AAAA" not in out, out  # closed: no second answer

    run(main())
