"""Audit probe: the phone's HTTPS ``GET /`` (phone/https.py ``_get``) against a hostile server's answer."""

from __future__ import annotations

import asyncio

from phoneemu.phone.https import _get
from tests.helpers import http_heads_server, run


async def _answer(payload: bytes) -> tuple[int | None, bytes, str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(payload)
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await _get(reader, writer, "127.0.0.1", timeout=2.0, max_body=65536)
        finally:
            writer.close()
    finally:
        srv.close()


def test_a_status_code_of_thousands_of_digits_is_a_malformed_response_not_a_value_error() -> None:
    code, body, problem = run(_answer(b"HTTP/1.1 " + b"2" * 5000 + b" OK\r\n\r\nbody"), limit=5.0)
    assert (code, body) == (None, b"")
    assert problem.startswith("malformed HTTP response"), problem


def test_a_three_digit_status_is_still_read() -> None:
    assert run(_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"), limit=5.0) == (200, b"hi", "")


def test_the_directory_get_names_the_port_in_its_host_header() -> None:
    """The secure directory's ``GET /`` over http:// at a port other than 80 sends ``Host: addr:port``
    (RFC 9110 §7.2; was the address alone: a virtual host on that port never matched)."""
    from phoneemu.phone.events import EventLog
    from phoneemu.phone.https import open_plain_http

    async def go() -> tuple[str, list[bytes]]:
        async with http_heads_server("127.0.0.1", b"hi") as (port, heads):
            res = await open_plain_http("127.0.0.1", port, mac="0011223344AB", events=EventLog(20),
                                        clock=lambda: 0, timeout=2.0)
            assert res.http_status == 200 and res.body == b"hi", res
        return f"127.0.0.1:{port}", heads

    where, heads = run(go(), limit=10.0)
    (head,) = heads
    assert f"\r\nHost: {where}\r\n".encode() in head, head
