"""Review s35 (commit a93d23f, the lab TVS's fairness): a full server closes for room only a connection
whose client is silent — nothing from it for ``first_request_grace``, nothing waiting unread in the kernel
— not one whose handshake is slow because the server's loop is busy, nor one whose client answers each
step within the grace while the whole handshake takes longer (a fleet on a loaded machine: the phones'
boots were cut while they kept talking). Real sockets over loopback, the clients in threads of their own."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable

import pytest

from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.tvs_loop import LoopTvsServer
from phoneemu.lab.tvs_service import TvsHandler
from phoneemu.net.tls import client_context_verify_after_handshake
from phoneemu.protocols import tvs
from tests.helpers import lab_template, run
from tests.polling import poll_until

HOST = "127.0.0.1"
MAC = "001122334455"
DEVICE = f"CP-8861-SEP{MAC}"
GRACE = 0.6

template = lab_template("tvssilence", seed=17, phones={MAC: {}})


def _stepped_query(port: int, request: bytes, pause: float, got: list[object]) -> None:
    """A TLS 1.2 client over a blocking socket (its own thread) that waits ``pause`` before each flight it
    sends — the ClientHello, its second handshake flight, the request — then reads the reply; ``got``
    receives the reply (a TVS message) or the exception. Each silence is below the grace, all of them
    together above it."""
    ctx = client_context_verify_after_handshake(max_version="1.2")
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_side=False)
    try:
        with socket.create_connection((HOST, port), timeout=5) as sock:
            for _ in range(8):  # the handshake: a few flights each way
                try:
                    obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    if pending := outgoing.read():
                        time.sleep(pause)
                        sock.sendall(pending)
                    data = sock.recv(65536)
                    if not data:
                        raise ConnectionError("closed by the server during the handshake") from None
                    incoming.write(data)
            sock.sendall(outgoing.read())  # (TLS 1.2: nothing left; kept for a server that differs)
            time.sleep(pause)
            obj.write(request)
            sock.sendall(outgoing.read())
            decoder = tvs.FrameDecoder()
            for _ in range(64):
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("closed by the server before the reply")
                incoming.write(data)
                with_plain = b""
                try:
                    while chunk := obj.read(65536):
                        with_plain += chunk
                except ssl.SSLWantReadError:
                    pass
                if frames := decoder.feed(with_plain):
                    got.append(frames[0])
                    return
            raise AssertionError("no reply")
    except Exception as exc:  # said by the test
        got.append(exc)


def _in_thread(target: Callable[..., None], *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def test_a_client_answering_each_step_within_the_grace_is_not_cut(cluster: LabCluster) -> None:
    """One place; the client pauses 0.35 s before each of its three flights (1 s in all, each silence
    below the 0.6 s grace) while a connection waits in the listen queue: it gets its answer, none is
    closed for room (was: closed 0.6 s after it connected, in the middle of its handshake)."""
    known = cluster.callmanager().der
    handler = TvsHandler(cluster.tvs_lookup, read_timeout=30.0)
    request = tvs.encode(tvs.verify_request(7, DEVICE, known))

    async def main() -> None:
        async with LoopTvsServer(handler, cluster.tvs_identity, HOST, 0, max_connections=1,
                                 handshake_timeout=30.0, first_request_grace=GRACE) as srv:
            got: list[object] = []
            thread = _in_thread(_stepped_query, srv.port, request, 0.35, got)
            await poll_until(lambda: srv.connections == 1, "the stepped client in", within=5, every=0.01)
            with socket.create_connection((HOST, srv.port), timeout=5):  # waits in the listen queue
                await poll_until(lambda: not thread.is_alive(), "the stepped client done", within=10,
                                 every=0.02)
                assert len(got) == 1 and isinstance(got[0], tvs.TvsMessage), got
                assert srv.evicted == 0 and handler.answered == 1
    run(main())


def test_a_client_whose_bytes_wait_for_a_busy_loop_is_not_cut(cluster: LabCluster,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """One place; the server's loop is busy for 1 s (a storm's handshakes) right after it accepted a
    client, whose ClientHello waits unread, while another connection comes: the client is not closed for
    the newcomer, it gets its answer (was: closed as silent past its grace, its bytes unread)."""
    known = cluster.callmanager().der
    handler = TvsHandler(cluster.tvs_lookup, read_timeout=30.0)
    request = tvs.encode(tvs.verify_request(7, DEVICE, known))
    held: list[socket.socket] = []

    async def main() -> None:
        async with LoopTvsServer(handler, cluster.tvs_identity, HOST, 0, max_connections=1,
                                 handshake_timeout=30.0, first_request_grace=GRACE) as srv:
            accept = srv._connection

            def busy_after_the_first(raw: socket.socket, addr: object) -> None:
                accept(raw, addr)
                if srv.connections == 1:
                    held.append(socket.create_connection((HOST, srv.port), timeout=5))  # queued
                    time.sleep(2 * GRACE)  # the loop busy: the client's ClientHello waits unread

            monkeypatch.setattr(srv, "_connection", busy_after_the_first)
            got: list[object] = []
            thread = _in_thread(_stepped_query, srv.port, request, 0.0, got)
            await poll_until(lambda: not thread.is_alive(), "the client done", within=10, every=0.02)
            assert len(got) == 1 and isinstance(got[0], tvs.TvsMessage), got
            assert srv.evicted == 0 and handler.answered == 1

    try:
        run(main())
    finally:
        for sock in held:
            sock.close()
