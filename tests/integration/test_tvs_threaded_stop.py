"""Stopping the threaded lab TVS server (phoneemu.lab.tvs_threaded, module rules "Stop"): the join of its
threads waits on the loop, not in the loop's default executor; connections cut by the stop end silently."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.tvs_service import TvsHandler
from phoneemu.lab.tvs_threaded import ThreadedTvsServer
from phoneemu.net.tls import client_context_verify_after_handshake, open_tls_connection
from tests.helpers import lab_template, run

HOST = "127.0.0.1"
template = lab_template("tvsstop", seed=12, phones={})


def test_close_does_not_wait_for_a_full_default_executor(cluster: LabCluster) -> None:
    """Old code joined in ``asyncio.to_thread``: with the loop's executor busy (a CAPF storm's key work),
    close waited for a free executor thread, past ``stop_timeout`` (here: until the test let go)."""
    handler = TvsHandler(cluster.tvs_lookup, read_timeout=30.0)
    let_go = threading.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=1)
        loop.set_default_executor(executor)
        busy = loop.run_in_executor(None, let_go.wait, 20.0)
        try:
            srv = ThreadedTvsServer(handler, cluster.tvs_identity, HOST, 0, workers=3, stop_timeout=5.0)
            await srv.start()
            with socket.create_connection((HOST, srv.port), timeout=5):  # a worker busy with it
                await asyncio.sleep(0.05)
                await asyncio.wait_for(srv.close(), 10.0)  # old code: TimeoutError
            assert not [t for t in threading.enumerate() if t.name.startswith("tvs-")]
        finally:
            let_go.set()
            await busy

    run(main())


def test_connections_cut_by_close_end_silently(cluster: LabCluster, caplog: pytest.LogCaptureFixture) -> None:
    """A TCP connection that never began TLS, and a TLS one inside a request, cut by close(): not counted
    or logged as a handshake failure or a refused ("truncated") request (old code: both)."""
    handler = TvsHandler(cluster.tvs_lookup, read_timeout=30.0)

    async def main() -> ThreadedTvsServer:
        srv = ThreadedTvsServer(handler, cluster.tvs_identity, HOST, 0, workers=3, handshake_timeout=30.0)
        await srv.start()
        raw = socket.create_connection((HOST, srv.port), timeout=5)
        ctx = client_context_verify_after_handshake()
        _r, tls = await open_tls_connection(HOST, srv.port, ctx, timeout=5)
        tls.write(bytes([0x57, 1, 1, 0, 0, 0, 0, 1, 0, 0x40]))  # a frame header: 64 bytes more to come
        await tls.drain()
        for _ in range(100):  # both accepted, the partial frame read
            await asyncio.sleep(0.02)
            if srv.connections == 2 and "TLS HS Done" in caplog.text:
                break
        await asyncio.sleep(0.1)
        try:
            await srv.close()
        finally:
            raw.close()
            tls.close()
        return srv

    with caplog.at_level(logging.INFO, logger="phoneemu.lab.tvs"):
        srv = run(main())
    assert srv.connections == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [] and srv.errors == 0 and handler.refused == 0
