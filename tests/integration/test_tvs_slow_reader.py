"""The lab TVS servers (each ``LabServers(tvs_impl=...)``, spec §E, §H.6) and a phone that reads its
answers slowly or never.

Answers that the kernel does not take at once are held and sent when the socket is writable again;
a client that takes none of them within the read timeout is cut with the reason logged (the loop and
threaded servers; asyncio's SSL transport buffers a connection's answers, at most ``max_requests`` of
them, and flushes them after the handler ends), and the service goes on for the next phone.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable

import pytest

from phoneemu.crypto import certs
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.net.tvs_client import tvs_verify
from phoneemu.protocols import tvs
from tests.helpers import lab_template, run

HOST = "127.0.0.1"
MAC = "001122334455"
DEVICE = f"CP-8861-SEP{MAC}"
REQUESTS = 200  # more answers (145 KB) than the window and the kernel's send buffer take at once

template = lab_template("tvsslow", seed=11, phones={MAC: {}})


def _queries(cluster: LabCluster) -> tuple[list[tvs.TvsMessage], bytes]:
    cm = cluster.callmanager().cert
    reqs = [tvs.query_request(100 + i, DEVICE, certs.dn_text(cm.subject), certs.dn_text(cm.issuer),
                              certs.serial_bytes(cm.serial_number)) for i in range(REQUESTS)]
    return reqs, b"".join(tvs.encode(r) for r in reqs)


def _small_window_client(port: int) -> ssl.SSLSocket:
    """A blocking TLS client with a tiny receive buffer: the server's answers soon fill the window."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)  # before connect: the window stays small
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)  # and the server's send buffer too
    raw.settimeout(10)
    raw.connect((HOST, port))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx.wrap_socket(raw)


def _pipeline_then_read(port: int, payload: bytes, pause: float,
                        until: Callable[[], bool] = lambda: False) -> bytes:
    """Send ``payload``, read nothing for ``pause`` seconds (less once ``until()`` is true), then read
    until the server closes."""
    with _small_window_client(port) as tls:
        tls.sendall(payload)
        end = time.monotonic() + pause
        while time.monotonic() < end and not until():  # the answers pile up on the server's side
            time.sleep(0.01)
        got = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                chunk = tls.recv(65536)
            except (ssl.SSLError, OSError):
                break
            if not chunk:
                break
            got += chunk
        return got


IMPLS = pytest.mark.parametrize("impl", ["loop", "threads", "asyncio"])


@IMPLS
def test_answers_a_slow_reader_takes_later_all_arrive_whole(cluster: LabCluster, impl: str) -> None:
    reqs, payload = _queries(cluster)

    async def main() -> bytes:
        async with LabServers(cluster, io_timeout=2.0, tvs_impl=impl) as servers:
            servers.tvs_handler.max_requests = REQUESTS
            got = await asyncio.to_thread(_pipeline_then_read, servers.ports["tvs"], payload, 0.5)
            assert servers.tvs_handler.refused == 0, [r.detail for r in servers.requests]
            return got

    got = run(main())
    assert len(got) == REQUESTS * len(got) // REQUESTS > 100_000
    msgs = tvs.FrameDecoder().feed(got)
    replies = [tvs.check_response(r, m) for r, m in zip(reqs, msgs, strict=True)]
    assert all(r.valid and r.certificate == cluster.callmanager().der for r in replies)


@pytest.mark.parametrize("impl", ["loop", "threads"])  # asyncio's transport buffers the answers itself
def test_a_reader_that_takes_nothing_is_cut_and_the_next_phone_is_served(cluster: LabCluster,
                                                                         impl: str) -> None:
    _reqs, payload = _queries(cluster)

    async def main() -> None:
        async with LabServers(cluster, io_timeout=0.5, tvs_impl=impl) as servers:
            servers.tvs_handler.max_requests = REQUESTS
            port = servers.ports["tvs"]
            # reads nothing until the server has cut it (2 s at most)
            got = await asyncio.to_thread(_pipeline_then_read, port, payload, 2.0,
                                          lambda: servers.tvs_handler.refused > 0)
            assert servers.tvs_handler.refused == 1
            assert any("reply not taken within 0.5s" in r.detail for r in servers.requests), \
                [r.detail for r in servers.requests]
            assert len(got) < 100_000  # cut before the last answers
            reply = await tvs_verify([(HOST, port)], DEVICE, cluster.callmanager().der, timeout=5)
            assert reply.valid

    run(main())
