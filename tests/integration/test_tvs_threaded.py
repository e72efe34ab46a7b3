"""The lab TVS servers on threads (phoneemu.lab.tvs_threaded) and on the loop (phoneemu.lab.tvs_loop): real
sockets, real TLS, the lab cluster. Behaviour tests run on both (``impl``)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time

import pytest

from phoneemu.errors import PhoneEmuError, TransportError
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.lab.tvs_loop import LoopTvsServer
from phoneemu.lab.tvs_service import TvsConnectionLog, TvsHandler
from phoneemu.lab.tvs_threaded import DEFAULT_WORKERS, ThreadedTvsServer
from phoneemu.net.tls import client_context_verify_after_handshake, open_tls_connection
from phoneemu.net.tvs_client import tvs_verify
from phoneemu.protocols import tvs
from tests.helpers import lab_template, run, tls_exchange

HOST = "127.0.0.1"
MAC = "001122334455"
DEVICE = f"CP-8861-SEP{MAC}"

template = lab_template("tvsthreads", seed=11, phones={MAC: {}})


def _workers(prefix: str = "tvs-worker-") -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


@pytest.fixture(params=["threads", "loop"])
def impl(request: pytest.FixtureRequest) -> str:
    """The TVS implementation a behaviour test runs on (``LabServers(tvs_impl=...)``)."""
    return str(request.param)


_CLASSES = {"threads": ThreadedTvsServer, "loop": LoopTvsServer}


def test_default_implementation_is_the_loop_and_unknown_is_refused(cluster: LabCluster) -> None:
    assert LabServers(cluster).tvs_impl == "loop"
    with pytest.raises(PhoneEmuError, match="tvs_impl"):
        LabServers(cluster, tvs_impl="fibres")


def test_verify_valid_and_unknown_are_answered_and_logged(impl: str, cluster: LabCluster) -> None:
    async def main() -> None:
        async with LabServers(cluster, tvs_impl=impl) as servers:
            assert isinstance(servers.tvs, _CLASSES[impl])
            addr = [(HOST, servers.ports["tvs"])]
            ok = await tvs_verify(addr, DEVICE, cluster.callmanager().der, timeout=5)
            assert ok.valid and ok.response.roles == (0, 2)  # SAST + CCM+TFTP (spec §B.3)
            assert ok.response.ttl == cluster.state.tvs_ttl
            assert ok.server_cert == cluster.tvs_identity().der
            bad = await tvs_verify(addr, DEVICE, b"\x30\x03\x02\x01\x00", timeout=5)
            assert bad.status == tvs.TvsStatus.INVALID
            await asyncio.sleep(0)  # entries are handed to the loop before the reply is sent
            got = [(r.name, r.outcome) for r in servers.requests if r.service == "tvs"]
            assert got == [(f"VERIFY {DEVICE}", "valid"), (f"VERIFY {DEVICE}", "invalid")]
            assert all(r.detail.startswith("TLSv1.3 ") for r in servers.requests if r.service == "tvs")
            assert servers.tvs_handler.answered == 2 and servers.tvs_handler.refused == 0
    run(main())


def test_two_requests_on_one_connection_are_both_answered(impl: str, cluster: LabCluster) -> None:
    r1 = tvs.verify_request(1001, DEVICE, cluster.callmanager().der)
    r2 = tvs.verify_request(1002, DEVICE, b"not a known cert")

    async def main() -> None:
        async with LabServers(cluster, tvs_impl=impl, io_timeout=0.5) as servers:
            got = await tls_exchange(HOST, servers.ports["tvs"], tvs.encode(r1) + tvs.encode(r2), wait=5)
            msgs = tvs.FrameDecoder().feed(got)
            valid = [tvs.check_response(r, m).valid for r, m in zip((r1, r2), msgs, strict=True)]
            assert valid == [True, False]
    run(main())


@pytest.mark.parametrize(("payload", "reason"), [
    (b"GET / HTTP/1.0\r\n\r\n", "malformed"),
    (bytes([0x57, 2, 1, 0, 0, 0, 0, 1, 0, 0]), "malformed"),
    (bytes([0x57, 1, 2, 0, 0, 0, 0, 1, 0, 4, 7, 0, 1, 0]), "malformed"),
    (bytes([0x57, 1, 1, 0, 0, 0, 0, 1, 0xFF, 0xFF]) + b"\x01" * 100, "timeout"),
])
def test_malformed_frame_closes_that_connection_only(impl: str, cluster: LabCluster, payload: bytes,
                                                     reason: str) -> None:
    async def main() -> None:
        async with LabServers(cluster, tvs_impl=impl, io_timeout=0.5) as servers:
            port = servers.ports["tvs"]
            # a second client holds its own connection open while the bad one is refused
            ctx = client_context_verify_after_handshake()
            _r, held = await open_tls_connection(HOST, port, ctx, timeout=3)
            host, held_port = held.get_extra_info("sockname")[:2]
            try:
                assert await tls_exchange(HOST, port, payload) == b""
                reply = await tvs_verify([(HOST, port)], DEVICE, cluster.callmanager().der, timeout=5)
                assert reply.valid
            finally:
                held.close()
                with contextlib.suppress(Exception):
                    await held.wait_closed()
            await asyncio.sleep(0)
            refused = [r for r in servers.requests if r.service == "tvs" and r.outcome != "valid"]
            # the held connection may itself reach its idle timeout (0.5 s): that is its own entry
            assert [r.outcome for r in refused if r.peer != f"{host}:{held_port}"] == [reason]
            assert servers.tvs_handler.refused == len(refused)
    run(main())


def test_regenerated_certificate_is_presented_on_next_connection(impl: str, cluster: LabCluster) -> None:
    async def main() -> None:
        async with LabServers(cluster, tvs_impl=impl) as servers:
            addr = [(HOST, servers.ports["tvs"])]
            before = await tvs_verify(addr, DEVICE, cluster.callmanager().der, timeout=5)
            cluster.regenerate("tvs")
            after = await tvs_verify(addr, DEVICE, cluster.callmanager().der, timeout=5)
            assert before.server_cert != after.server_cert
            assert after.server_cert == cluster.tvs_identity().der
            # the regenerated TVS certificate is itself vouched for (role TVS 21, spec §E.6)
            own = await tvs_verify(addr, DEVICE, cluster.tvs_identity().der, timeout=5)
            assert own.valid and own.response.roles == (21,)
    run(main())


def test_tls_1_0_client_is_served(impl: str, cluster: LabCluster) -> None:
    """7900-series phones speak only TLS 1.0 (spec §E.1)."""
    async def main() -> None:
        async with LabServers(cluster, tvs_impl=impl) as servers:
            ctx = client_context_verify_after_handshake(min_version="1.0", max_version="1.0")
            reply = await tvs_verify([(HOST, servers.ports["tvs"])], DEVICE, cluster.callmanager().der,
                                     timeout=5, tls=ctx)
            assert reply.valid and reply.tls.startswith("TLSv1 ")
    run(main())


def test_silent_client_is_cut_after_the_handshake_timeout(impl: str, cluster: LabCluster) -> None:
    async def main() -> None:
        async with LabServers(cluster, tvs_impl=impl, io_timeout=0.3) as servers:
            reader, writer = await asyncio.open_connection(HOST, servers.ports["tvs"])  # no ClientHello
            t0 = time.monotonic()
            assert await asyncio.wait_for(reader.read(100), 5) == b""
            assert time.monotonic() - t0 < 3
            writer.close()
            assert servers.tvs is not None and servers.tvs.errors == 1
            reply = await tvs_verify([(HOST, servers.ports["tvs"])], DEVICE, cluster.callmanager().der,
                                     timeout=5)
            assert reply.valid
    run(main())


def test_stop_is_bounded_with_idle_connections_and_port_is_reused(impl: str, cluster: LabCluster) -> None:
    async def main() -> None:
        before = len(_workers())
        async with LabServers(cluster, tvs_impl=impl, io_timeout=30.0) as servers:
            port = servers.ports["tvs"]
            threaded = impl == "threads"  # the loop server starts no thread
            assert len(_workers()) - before == (DEFAULT_WORKERS if threaded else 0)
            assert len(_workers("tvs-watchdog")) == (1 if threaded else 0)
            # one connection idle after the handshake, one TCP connection that never starts TLS
            ctx = client_context_verify_after_handshake()
            _r, idle = await open_tls_connection(HOST, port, ctx, timeout=3)
            _r2, raw = await asyncio.open_connection(HOST, port)
            await asyncio.sleep(0.1)
            t0 = time.monotonic()
            await servers.stop_service("tvs")
            assert time.monotonic() - t0 < 3.0  # not the 30 s read/handshake timeouts
            assert len(_workers()) == before
            assert not _workers("tvs-watchdog")
            assert not servers.running("tvs")
            with pytest.raises(TransportError):
                await tvs_verify([(HOST, port)], DEVICE, cluster.callmanager().der, timeout=1.0)
            await servers.start_service("tvs")
            assert servers.ports["tvs"] == port
            reply = await tvs_verify([(HOST, port)], DEVICE, cluster.callmanager().der, timeout=5)
            assert reply.valid
            for w in (idle, raw):
                w.close()
        assert len(_workers()) == before  # LabServers.stop() joined the pool
    run(main())


def test_loop_server_pauses_accepting_at_max_connections_and_resumes(cluster: LabCluster) -> None:
    """LoopTvsServer: beyond ``max_connections`` open connections the next waits in the listen queue
    (not refused, not served) and is served as soon as one of them ends."""
    known = cluster.callmanager().der
    handler = TvsHandler(cluster.tvs_lookup, read_timeout=10.0)

    async def main() -> None:
        async with LoopTvsServer(handler, cluster.tvs_identity, HOST, 0, max_connections=2) as srv:
            addr = [(HOST, srv.port)]
            held = [await asyncio.open_connection(HOST, srv.port) for _ in range(2)]  # no ClientHello
            await asyncio.sleep(0.1)
            assert srv.connections == 2
            waiting = asyncio.ensure_future(tvs_verify(addr, DEVICE, known, timeout=10))
            await asyncio.sleep(0.3)
            assert not waiting.done() and srv.connections == 2
            held[0][1].close()
            reply = await asyncio.wait_for(waiting, 5)
            assert reply.valid and srv.connections == 3 and handler.answered == 1
            held[1][1].close()
    run(main())


def test_server_alone_with_a_plain_lookup_and_many_clients(cluster: LabCluster, impl: str) -> None:
    """Direct use: any lookup, ``on_log`` runs on the loop thread, counters add up under concurrency."""
    known = cluster.callmanager().der
    seen: list[tuple[TvsConnectionLog, bool]] = []

    def lookup(key: bytes | tuple[str, bytes, str]) -> tvs.TvsEntry | None:
        return tvs.TvsEntry(cert_der=known, roles=(2,), ttl=60) if key == known else None

    def on_log(entry: TvsConnectionLog) -> None:
        seen.append((entry, threading.current_thread() is threading.main_thread()))

    async def main() -> None:
        handler = TvsHandler(lookup, read_timeout=2.0, on_log=on_log)
        srv: ThreadedTvsServer | LoopTvsServer = (
            ThreadedTvsServer(handler, cluster.tvs_identity, HOST, 0, workers=4) if impl == "threads"
            else LoopTvsServer(handler, cluster.tvs_identity, HOST, 0, max_connections=4))
        async with srv:
            addr = [(HOST, srv.port)]
            replies = await asyncio.gather(*(tvs_verify(addr, DEVICE, known if i % 2 else b"x", timeout=10)
                                             for i in range(24)))
            assert sum(r.valid for r in replies) == 12
            await asyncio.sleep(0)
            assert handler.answered == 24 and srv.connections == 24
        assert len(seen) == 24 and all(on_main for _e, on_main in seen)
        assert sorted(e.outcome for e, _m in seen) == ["invalid"] * 12 + ["valid"] * 12
    run(main())


def test_workers_must_be_positive(cluster: LabCluster) -> None:
    handler = TvsHandler(cluster.tvs_lookup)
    with pytest.raises(PhoneEmuError, match="workers"):
        ThreadedTvsServer(handler, cluster.tvs_identity, HOST, 0, workers=0)
    with pytest.raises(PhoneEmuError, match="max_connections"):
        LoopTvsServer(handler, cluster.tvs_identity, HOST, 0, max_connections=0)


def test_plaintext_instead_of_tls_is_refused_cleanly(impl: str, cluster: LabCluster) -> None:
    async def main() -> None:
        async with LabServers(cluster, tvs_impl=impl) as servers:
            with socket.create_connection((HOST, servers.ports["tvs"]), timeout=5) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n" + bytes(range(256)))
                got = b""
                with contextlib.suppress(TimeoutError):
                    while chunk := await asyncio.to_thread(s.recv, 65536):
                        got += chunk
            assert not got.startswith(b"HTTP") and b"W\x01" not in got
            reply = await tvs_verify([(HOST, servers.ports["tvs"])], DEVICE, cluster.callmanager().der,
                                     timeout=5)
            assert reply.valid
    run(main())


def test_no_session_ticket_for_tls_1_2_clients(impl: str, cluster: LabCluster) -> None:
    """Phones never resume (§E.1): no NewSessionTicket is built for them, TLS 1.2 included."""
    async def main() -> None:
        async with LabServers(cluster, tvs_impl=impl) as servers:
            for version in ("1.2", "1.3"):
                ctx = client_context_verify_after_handshake(min_version=version, max_version=version)
                _r, w = await open_tls_connection(HOST, servers.ports["tvs"], ctx, timeout=3)
                try:
                    w.write(tvs.encode(tvs.verify_request(1, DEVICE, cluster.callmanager().der)))
                    assert (await asyncio.wait_for(_r.read(65536), 5))[:3] == bytes([0x57, 1, 2])
                    obj = w.get_extra_info("ssl_object")
                    assert obj.version() == f"TLSv{version}"
                    assert obj.session is None or not obj.session.has_ticket
                finally:
                    w.close()
                    with contextlib.suppress(Exception):
                        await w.wait_closed()
    run(main())


def test_stalled_handshake_and_idle_connection_are_cut_by_the_watchdog(impl: str,
        cluster: LabCluster, caplog: pytest.LogCaptureFixture) -> None:
    """Blocking sockets: the watchdog enforces the handshake deadline (half a ClientHello, then
    nothing) and the idle deadline after a request; both end quietly, the server keeps serving."""
    async def main() -> None:
        async with LabServers(cluster, tvs_impl=impl, io_timeout=0.3) as servers:
            port = servers.ports["tvs"]
            assert isinstance(servers.tvs, _CLASSES[impl])
            assert not isinstance(servers.tvs, ThreadedTvsServer) or servers.tvs.tick <= 0.3 / 4
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(bytes([0x16, 3, 1, 0x02, 0x00, 0x01]))  # a ClientHello record header, cut
            t0 = time.monotonic()
            assert await asyncio.wait_for(reader.read(100), 5) == b""  # no alert, just the end
            assert time.monotonic() - t0 < 3  # the 0.3 s deadline, not a 10 s default
            assert servers.tvs.errors == 1
            writer.close()
            # a verified request, then silence: closed after the idle timeout, not counted as refused
            ctx = client_context_verify_after_handshake()
            r2, w2 = await open_tls_connection(HOST, port, ctx, timeout=3)
            w2.write(tvs.encode(tvs.verify_request(1, DEVICE, cluster.callmanager().der)))
            assert (await asyncio.wait_for(r2.read(65536), 5))[:3] == bytes([0x57, 1, 2])
            t0 = time.monotonic()
            assert await asyncio.wait_for(r2.read(100), 5) == b""
            assert time.monotonic() - t0 < 3
            w2.close()
            with contextlib.suppress(Exception):
                await w2.wait_closed()
            assert servers.tvs_handler.refused == 0 and servers.tvs_handler.answered == 1
            reply = await tvs_verify([(HOST, port)], DEVICE, cluster.callmanager().der, timeout=5)
            assert reply.valid
    with caplog.at_level("WARNING", logger="phoneemu.lab.tvs"):
        run(main())
    assert any("TLS handshake timeout after 0.3s" in r.getMessage() for r in caplog.records)


def test_a_client_that_is_not_tls_is_one_line_worded_alike_by_every_tvs_server(
        impl: str, cluster: LabCluster, caplog: pytest.LogCaptureFixture) -> None:
    """Each TVS implementation (and CAPF's TlsServer) says ``tvs: PEER: TLS handshake failed: REASON``
    with OpenSSL's reason, so one grep finds them all in a lab serve log."""
    async def main() -> None:
        async with LabServers(cluster, tvs_impl=impl, io_timeout=2.0) as servers:
            reader, writer = await asyncio.open_connection(HOST, servers.ports["tvs"])
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            await asyncio.wait_for(reader.read(1000), 5)  # an alert or nothing, then the end
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            await asyncio.sleep(0.1)

    with caplog.at_level("WARNING"):
        run(main())
    lines = [r.getMessage() for r in caplog.records if "TLS handshake" in r.getMessage()]
    assert len(lines) == 1, lines
    assert re.fullmatch(r"tvs: 127\.0\.0\.1:\d+: TLS handshake failed: (WRONG_VERSION_NUMBER|"
                        r"HTTP_REQUEST)", lines[0]), lines
