"""What OpenSSL writes while a server reads after the handshake reaches the client (phoneemu.net.tls_accept,
phoneemu.lab.tvs_loop): the ``no_renegotiation`` alert refusing a TLS 1.2 client's renegotiation, the
``bad_record_mac`` alert of a corrupt record. Python's ssl cannot renegotiate, so the client asking is
``openssl s_client -tls1_2`` and its ``R`` command (skipped without the openssl command). Loopback only."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.tvs_loop import LoopTvsServer
from phoneemu.lab.tvs_service import TvsHandler
from phoneemu.net.tls import TlsServer, client_context_verify_after_handshake
from tests.helpers import lab_template, run, self_signed_server_context

HOST = "127.0.0.1"
template = lab_template("renegotiation", seed=17, phones={})
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None,
                                   reason="needs the openssl command (s_client asks to renegotiate)")

Serving = Callable[[], AbstractAsyncContextManager[int]]


async def _reading_until_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        for _ in range(10_000):  # bounded: the client sends a few records at most
            if not await reader.read(65536):
                break
    finally:
        writer.close()


@asynccontextmanager
async def _tls_accept_server() -> AsyncIterator[int]:
    """A :class:`TlsServer` (TLS by :class:`TlsAcceptProtocol`) whose handler reads until the end."""
    async with TlsServer(_reading_until_eof, self_signed_server_context("renegotiation", 1), HOST, 0) as srv:
        yield srv.port


def _tvs_loop_server(cluster: LabCluster) -> Serving:
    @asynccontextmanager
    async def serving() -> AsyncIterator[int]:
        handler = TvsHandler(cluster.tvs_lookup, read_timeout=30.0)  # longer than the client waits
        async with LoopTvsServer(handler, cluster.tvs_identity, HOST, 0, handshake_timeout=30.0) as srv:
            yield srv.port
    return serving


@pytest.fixture(params=["tls_accept", "tvs_loop"])
def serving(request: pytest.FixtureRequest) -> Serving:
    if request.param == "tls_accept":
        return _tls_accept_server
    return _tvs_loop_server(request.getfixturevalue("cluster"))


async def _read_until(stream: asyncio.StreamReader, marker: bytes, within: float) -> bytes:
    out = b""
    async with asyncio.timeout(within):
        for _ in range(10_000):  # bounded: s_client's summary is a few KiB
            chunk = await stream.read(4096)
            out += chunk
            if marker in out or not chunk:
                return out
    return out


async def _renegotiation_asked(port: int) -> str:
    """``openssl s_client -tls1_2 -msg``: handshake, then ``R``; what it printed until it ended (it ends
    when refused: the warning alert makes it send a fatal one and exit)."""
    proc = await asyncio.create_subprocess_exec(
        "openssl", "s_client", "-connect", f"{HOST}:{port}", "-tls1_2", "-msg",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        out = await _read_until(proc.stdout, b"Verify return code", 10)  # the session summary: connected
        assert b"Verify return code" in out, out.decode(errors="replace")
        proc.stdin.write(b"R\n")
        await proc.stdin.drain()
        try:
            out += await asyncio.wait_for(proc.stdout.read(), 5)
        except TimeoutError:
            raise AssertionError("no answer to the renegotiation in 5 s: s_client still waiting") from None
        return out.decode(errors="replace")
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


@needs_openssl
def test_a_renegotiation_is_refused_with_an_alert_at_once(serving: Serving) -> None:
    async def main() -> None:
        async with serving() as port:
            said = await _renegotiation_asked(port)
        assert "RENEGOTIATING" in said
        assert "Alert [length 0002], warning no_renegotiation" in said
    run(main())


def _corrupt_record_answer(port: int) -> bytes:
    """A TLS 1.2 client (memory BIOs over a blocking socket) sends one application record with its last
    byte flipped; what the server sent back before closing."""
    ctx = client_context_verify_after_handshake(max_version="1.2")
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing)
    with socket.create_connection((HOST, port), timeout=5) as sock:
        for _ in range(10):  # TLS 1.2: two round trips
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                incoming.write(sock.recv(65536))
        sock.sendall(outgoing.read())
        obj.write(b"hello")
        record = bytearray(outgoing.read())
        record[-1] ^= 1
        sock.sendall(bytes(record))
        got = b""
        for _ in range(100):
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    incoming.write(got)
    with pytest.raises(ssl.SSLError, match="BAD_RECORD_MAC"):  # the alert, decrypted by the client
        obj.read(100)
    return got


def test_a_corrupt_record_is_answered_with_bad_record_mac() -> None:
    async def main() -> None:
        async with _tls_accept_server() as port:
            got = await asyncio.to_thread(_corrupt_record_answer, port)
        assert got[:3] == b"\x15\x03\x03"  # an alert record, TLS 1.2
    run(main())
