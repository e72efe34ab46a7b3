"""Red-team attacks on the lab servers over loopback: HTTP request framing and descriptor floods.

Rules under test: the HTTP server takes no request body and checks every Content-Length line (RFC 9112
§6.3 item 5: two that differ are a 400 and the connection closed, never a smuggled second request), a
version other than ``HTTP/1.<digit>`` and two Host lines are 400, ``close`` among the Connection tokens
closes (:mod:`phoneemu.net.http`); a flood of TCP connections that never finish their TLS handshake on
the TVS or CAPF port holds at most that service's share of the open-file limit, so HTTP and TFTP of the
same process still answer (:mod:`phoneemu.lab.servers` "Descriptors",
:class:`phoneemu.net.tls.ConnectionBudget`).
After each attack the server answers a normal request.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.errors import TransportError
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import TVS_SHARE, LabServers
from phoneemu.net import tftp_server
from phoneemu.net.http import HttpServer, http_get
from phoneemu.net.tftp_server import transfer_socket_budget
from phoneemu.net.tls import client_context_verify_after_handshake, open_tls_connection
from tests.helpers import lab_template, run

HOST = "127.0.0.1"
MAC = "0011223344DE"
FILES = {"a.txt": b"AAAA", "SEP0011223344DE.cnf.xml": b"<device/>"}

template = lab_template("redteam-fds", seed=31, phones={MAC: {}})


async def _exchange(port: int, data: bytes, *, wait: float = 2.0) -> bytes:
    """Send ``data``, return all the server sends until it closes (or ``wait`` s of silence)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    out = b""
    try:
        writer.write(data)
        await writer.drain()
        while chunk := await asyncio.wait_for(reader.read(65536), wait):
            out += chunk
    except TimeoutError:
        pass
    finally:
        writer.close()
    return out


_SMUGGLED = b"GET /SEP0011223344DE.cnf.xml HTTP/1.1\r\n\r\n"


@pytest.mark.parametrize(("request_bytes", "logged"), [
    # CL.CL desync: a front end taking the first Content-Length sees one request with a 41-byte body;
    # the server took the last (0) and answered the body as a second request
    (b"GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nContent-Length: 0\r\n\r\n" % len(_SMUGGLED)
     + _SMUGGLED, "request body not accepted (Content-Length '41, 0')"),
    (b"GET /a.txt HTTP/1.1\r\nContent-length: %d\r\ncontent-LENGTH: 0\r\n\r\n" % len(_SMUGGLED) + _SMUGGLED,
     "request body not accepted"),
    (b"GET /a.txt HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + _SMUGGLED,
     "Transfer-Encoding"),
    (b"GET /a.txt HTTP/1.1x\r\n\r\n" + _SMUGGLED, "malformed request line"),
    (b"GET /a.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + _SMUGGLED, "more than one Host header"),
])
def test_http_framing_attacks_get_one_400_and_the_connection_closed(
        request_bytes: bytes, logged: str, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with HttpServer(FILES, HOST, 0, idle_timeout=2.0) as srv:
            out = await _exchange(srv.port, request_bytes)
            assert out.startswith(b"HTTP/1.1 400 "), out[:200]
            assert out.count(b"HTTP/1.1 ") == 1 and b"<device/>" not in out, out  # nothing smuggled through
            assert b"Connection: close\r\n" in out
            assert await http_get(HOST, srv.port, "a.txt") == b"AAAA"  # still serving

    caplog.set_level("INFO", logger="phoneemu.net.http")
    run(main())
    assert any(logged in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize(("version", "connection"), [
    ("HTTP/1.1", "keep-alive, close"), ("HTTP/1.1", "Close"), ("HTTP/1.0", "keep-alive, close")])
def test_http_close_among_the_connection_tokens_closes(version: str, connection: str) -> None:
    """RFC 9110 §7.6.1: Connection is a token list; ``close`` in it ends the connection after the answer
    (before: only the exact value ``close`` did, the second pipelined request was answered too)."""
    async def main() -> None:
        async with HttpServer(FILES, HOST, 0, idle_timeout=2.0) as srv:
            first = f"GET /a.txt {version}\r\nConnection: {connection}\r\n\r\n".encode()
            out = await _exchange(srv.port, first + _SMUGGLED)
            assert out.count(b"HTTP/1.1 200 ") == 1 and b"Connection: close\r\n" in out, out

    run(main())


def test_http_keep_alive_and_pipelining_still_work() -> None:
    """The framing checks refuse nothing a phone sends: pipelined GETs and HTTP/1.0 keep-alive."""
    async def main() -> None:
        async with HttpServer(FILES, HOST, 0, idle_timeout=0.5) as srv:
            out = await _exchange(srv.port, b"GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                                  + _SMUGGLED, wait=1.0)
            assert out.count(b"HTTP/1.1 200 ") == 2 and out.endswith(b"<device/>"), out
            out = await _exchange(srv.port, b"GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                                  b"GET /a.txt HTTP/1.0\r\n\r\n", wait=1.0)
            assert out.count(b"HTTP/1.1 200 ") == 2 and out.endswith(b"Connection: close\r\n\r\nAAAA"), out

    run(main())


@pytest.fixture
def low_fd_limit() -> Iterator[int]:
    """A soft RLIMIT_NOFILE 300 above what is open now (the common soft limit is 1,024; restored after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(soft, len(os.listdir("/proc/self/fd")) + 300)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        yield low
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


_FLOODER = """
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = []
for _ in range(int(sys.argv[2])):
    try:
        held.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2))
    except OSError:
        break
print(len(held), flush=True)
sys.stdin.read()  # held until the test closes our stdin
"""


@pytest.mark.parametrize("service", ["tvs", "capf"])
def test_a_handshake_flood_leaves_descriptors_for_http_and_tftp(
        cluster: LabCluster, low_fd_limit: int, service: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """400 TCP connections to TVS (or CAPF) that never send a ClientHello, from another process: the
    service holds at most its share of the descriptors (TVS stops accepting, CAPF closes the excess), and
    HTTP and TFTP of the same process answer meanwhile; once the flood ends the service handshakes again.
    (Before: TVS and CAPF took up to 1,024 connections each whatever the limit — "accept failed: Too many
    open files", HTTP unable to accept, TFTP "server busy".)"""
    monkeypatch.setattr(tftp_server, "report_icmp_errors", lambda _sock: False)
    flood = 400
    assert flood > low_fd_limit - len(os.listdir("/proc/self/fd"))

    async def main() -> None:
        async with LabServers(cluster, io_timeout=5.0) as servers:
            allowed = transfer_socket_budget(TVS_SHARE) if service == "tvs" else servers.tls_budget.limit
            port = servers.ports[service]
            child = subprocess.Popen([sys.executable, "-c", _FLOODER, str(port), str(flood)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                loop = asyncio.get_running_loop()
                assert child.stdout is not None
                connected = await asyncio.wait_for(loop.run_in_executor(None, child.stdout.readline), 20)
                assert int(connected) == flood
                await asyncio.sleep(0.3)  # the server takes what it takes of the flood
                body = await http_get(HOST, servers.ports["http"], "ITLFile.tlv", timeout=3)
                assert body == cluster.get("ITLFile.tlv")
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.setblocking(False)
                    rrq = b"\x00\x01ITLFile.tlv\x00octet\x00"
                    await loop.sock_sendto(s, rrq, (HOST, servers.ports["tftp"]))
                    answer = await asyncio.wait_for(loop.sock_recv(s, 1024), 3)
                assert answer[:4] == b"\x00\x03\x00\x01", answer[:40]  # DATA 1, not "server busy"
                held = len(os.listdir("/proc/self/fd"))  # the flood's share, a TFTP transfer, the lab's own
                assert held < low_fd_limit - 20, (held, low_fd_limit)
                assert held <= 60 + allowed, (held, allowed)
            finally:
                assert child.stdin is not None and child.stdout is not None
                child.stdin.close()
                await loop.run_in_executor(None, child.wait, 10)
                child.stdout.close()
            any_cert = client_context_verify_after_handshake()
            for _ in range(40):  # the flood's connections are seen closing: their places come back
                try:
                    _reader, writer = await open_tls_connection(HOST, port, any_cert, timeout=5)
                except TransportError:
                    await asyncio.sleep(0.1)
                    continue
                writer.close()
                break
            else:
                raise AssertionError(f"{service}: no TLS handshake within 4 s of the flood's end")

    run(main(), limit=40)
