"""Robustness of the phone's clients against legitimate but unusual servers and hostile ones: the lean TLS
client (phoneemu.net.tls_client, as the TVS client opens it) bounds a handshake by time and bytes, not by
a count of reads; the HTTP client refuses a control character in a reason phrase (RFC 9112 §4)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from phoneemu.errors import TransportError
from phoneemu.net import tls_client
from phoneemu.net.http import http_get
from phoneemu.net.tls import TlsServer, phone_client_context
from phoneemu.net.tls_client import HANDSHAKE_MAX_BYTES, TlsClientConnection
from tests.helpers import run_within, scripted_tcp_server, self_signed_server_context

HOST = "127.0.0.1"
PHONE = ("1.2", "1.3")
PIECE = 8  # bytes the slow link delivers at a time
run = run_within(10)

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def open_fails(port: int, *, timeout: float) -> tuple[TransportError, float]:
    """The phone's TLS client (as the TVS client opens it) opening to ``port`` fails: the error, and how
    long it took to fail."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TransportError) as ei:
        await TlsClientConnection.open(HOST, port, phone_client_context(PHONE), timeout=timeout)
    return ei.value, loop.time() - start


async def read_client_hello(reader: asyncio.StreamReader) -> None:
    head = await reader.readexactly(5)
    await reader.readexactly(int.from_bytes(head[3:5], "big"))


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await asyncio.wait_for(reader.readexactly(5), 2) + b"!")
    await writer.drain()


def slow_link(upstream: int, pieces: list[int]) -> Script:
    """A proxy to ``upstream`` that hands the client the server's bytes :data:`PIECE` at a time, each
    drained and a moment apart (a link or middlebox that delivers every segment on its own); the client's
    bytes pass as they come. ``pieces`` gets one entry per piece handed on."""
    async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter, size: int) -> None:
        for _ in range(10_000):
            data = await source.read(65536)
            if not data:
                break
            for at in range(0, len(data), size):
                sink.write(data[at:at + size])
                await sink.drain()
                if size == PIECE:
                    pieces.append(1)
                    await asyncio.sleep(0.001)
        sink.close()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(HOST, upstream)
        try:
            await asyncio.gather(pump(reader, up_writer, 65536), pump(up_reader, writer, PIECE))
        finally:
            up_writer.close()
    return script


def test_a_handshake_delivered_a_few_bytes_at_a_time_completes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Old behaviour: "TLS handshake did not finish" (kind tls) after 64 reads, well within the time-out,
    from a legitimate server whose flight reached the phone in more than 64 pieces."""
    rounds: list[int] = []
    fill = TlsClientConnection._fill

    async def counted_fill(self: TlsClientConnection) -> None:
        rounds.append(1)
        await fill(self)
    monkeypatch.setattr(TlsClientConnection, "_fill", counted_fill)

    async def main() -> None:
        pieces: list[int] = []
        async with TlsServer(echo, self_signed_server_context("slow-link", 7), HOST, 0) as srv, \
                scripted_tcp_server(slow_link(srv.port, pieces)) as port:
            loop = asyncio.get_running_loop()
            start = loop.time()
            conn = await TlsClientConnection.open(HOST, port, phone_client_context(PHONE), timeout=5)
            handshake_reads = len(rounds)
            try:
                await conn.send(b"hello")
                async with asyncio.timeout_at(conn.deadline):
                    got = b""
                    for _ in range(200):
                        got += await conn.recv()
                        if len(got) >= 6:
                            break
                assert got == b"hello!"
                assert conn.peer_cert is not None and conn.description.startswith("TLSv1.")
            finally:
                conn.close()
            assert handshake_reads > 64, (handshake_reads, len(pieces))
            assert loop.time() - start < 4
    run(main())


def test_a_server_trickling_its_handshake_for_ever_is_cut_by_the_timeout() -> None:
    """A record header announcing 16 KiB, then its body a byte every 2 ms: never a whole record, so never a
    TLS error; the time-out ends it (the old count of 64 reads ended it first, as "did not finish")."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_client_hello(reader)
        writer.write(b"\x16\x03\x03\x40\x00")
        for _ in range(16_000):  # bounded: the client's close ends it well before
            writer.write(b"\x00")
            await writer.drain()
            await asyncio.sleep(0.002)

    async def main() -> None:
        async with scripted_tcp_server(script) as port:
            error, took = await open_fails(port, timeout=0.6)
            assert error.kind == "timeout", error
            assert "TLS handshake timeout after 0.6s" in str(error), error
            assert 0.5 < took < 2
    run(main())


def test_a_server_streaming_hello_requests_is_cut_by_bytes() -> None:
    """HelloRequests, which OpenSSL skips during a handshake, sent without end as fast as the phone takes
    them: the handshake fails after :data:`HANDSHAKE_MAX_BYTES` from the server, long before the time-out."""
    record = b"\x16\x03\x03\x40\x00" + bytes(16384)  # 4096 HelloRequests (type 0, length 0)

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_client_hello(reader)
        for _ in range(2 * HANDSHAKE_MAX_BYTES // len(record)):  # twice the cap at most
            writer.write(record)
            await writer.drain()

    async def main() -> None:
        async with scripted_tcp_server(script) as port:
            error, took = await open_fails(port, timeout=8)
            text = str(error)
            assert error.kind == "tls", text
            assert f"TLS handshake did not finish within {HANDSHAKE_MAX_BYTES} bytes from the server" in text
            assert took < 5
    run(main())


@contextlib.asynccontextmanager
async def canned(response: bytes) -> AsyncIterator[int]:
    """An HTTP server answering a request head with ``response`` as it is, then closing; its port."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(response)
        await writer.drain()
    async with scripted_tcp_server(script) as port:
        yield port


@pytest.mark.parametrize("char", [b"\x00", b"\x01", b"\x1b", b"\x7f", b"\r", b"\x0b"])
def test_a_control_character_in_the_reason_phrase_is_refused(char: bytes) -> None:
    """RFC 9112 §4: reason-phrase = *( HTAB / SP / VCHAR / obs-text ). Old behaviour: the file was taken."""
    async def main() -> None:
        async with canned(b"HTTP/1.1 200 O" + char + b"K\r\nContent-Length: 2\r\n\r\nok") as port:
            with pytest.raises(TransportError) as ei:
                await http_get(HOST, port, "f", timeout=2)
        shown = repr("HTTP/1.1 200 O" + char.decode("latin-1") + "K")
        assert ei.value.kind == "protocol", ei.value
        assert f"control character in the reason phrase of status line {shown} (RFC 9112 §4)" in str(ei.value)
        assert char.decode("latin-1") not in str(ei.value)  # the line named printable
    run(main())


@pytest.mark.parametrize("status_line", [b"HTTP/1.1 200 O\tK", b"HTTP/1.1 200 Tr\xe8s bien", b"HTTP/1.1 200 ",
                                         b"HTTP/1.1 200", b"HTTP/1.0 200 All ~ good!"])
def test_a_reason_phrase_of_htab_sp_vchar_or_obs_text_is_taken(status_line: bytes) -> None:
    async def main() -> None:
        async with canned(status_line + b"\r\nContent-Length: 2\r\n\r\nok") as port:
            assert await http_get(HOST, port, "f", timeout=2) == b"ok"
    run(main())


def test_a_long_record_read_a_few_bytes_at_a_time_is_received(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 16,000-byte answer (one TLS record) taken from the socket 8 bytes a read: ~2,000 reads before the
    record is whole (old behaviour: "no complete TLS record" after 1,024, within the time-out)."""
    monkeypatch.setattr(tls_client, "_READ_SIZE", PIECE)
    answer = bytes(range(256)) * 62 + bytes(128)  # 16,000 bytes

    async def long_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.wait_for(reader.readexactly(5), 2)
        writer.write(answer)
        await writer.drain()

    async def main() -> None:
        async with TlsServer(long_answer, self_signed_server_context("long-record", 7), HOST, 0) as srv:
            conn = await TlsClientConnection.open(HOST, srv.port, phone_client_context(PHONE), timeout=5)
            try:
                await conn.send(b"hello")
                got = b""
                async with asyncio.timeout_at(conn.deadline):
                    for _ in range(len(answer)):
                        part = await conn.recv()
                        got += part
                        if not part or len(got) >= len(answer):
                            break
                assert got == answer
            finally:
                conn.close()
    run(main())
