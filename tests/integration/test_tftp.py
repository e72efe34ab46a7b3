"""TFTP server and client over real loopback sockets (RFC 1350/2347/2348/2349; spec §C.6)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from phoneemu.errors import TransportError
from phoneemu.net import tftp_client
from phoneemu.net.capture import PcapWriter, read_pcap
from phoneemu.net.fetch import HttpFetcher, HttpThenTftpFetcher, TftpFetcher
from phoneemu.net.tftp import TftpClientPool, TftpRequestEvent, TftpServer, tftp_get
from phoneemu.net.tftp_codec import Ack, Data, Error, OptionAck, ReadRequest, decode, encode
from tests.helpers import run_within

HOST = "127.0.0.1"
FILES = {
    "small.txt": b"hello phone\n",
    "ITLFile.tlv": os.urandom(10_240),
    "exact512.bin": os.urandom(512 * 4),
    "exact1428.bin": os.urandom(1428 * 3),
    "large.bin": os.urandom(300_000),
    "empty": b"",
}
MODES = ["ephemeral", "shared"]


run = run_within(10)


class Recorder:
    """UdpSink that keeps every datagram the server saw or sent."""

    def __init__(self) -> None:
        self.packets: list[tuple[tuple[str, int], tuple[str, int], bytes]] = []

    def udp(self, src: tuple[str, int], dst: tuple[str, int], payload: bytes,
            ts: float | None = None) -> None:
        self.packets.append((src, dst, payload))

    def sent_by(self, port_ok: Callable[[int], bool]) -> list[Any]:
        return [decode(p) for s, _d, p in self.packets if port_ok(s[1])]


class RawClient:
    """A hand-driven UDP socket for protocol corner cases."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind((HOST, 0))

    async def send(self, data: bytes, addr: tuple[str, int]) -> None:
        await asyncio.get_running_loop().sock_sendto(self.sock, data, addr)

    async def recv(self, timeout: float = 1.0) -> tuple[bytes, tuple[str, int]]:
        return await asyncio.wait_for(asyncio.get_running_loop().sock_recvfrom(self.sock, 70000), timeout)

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("blksize", [None, 512, 1428, 8192, 65464])
def test_get_all_sizes(mode: str, blksize: int | None) -> None:
    async def main() -> None:
        async with TftpServer(FILES, HOST, 0, tid_mode=mode) as srv:  # type: ignore[arg-type]
            for name, content in FILES.items():
                assert await tftp_get(HOST, srv.port, name, blksize=blksize, tsize=True) == content, name
    run(main())


def test_options_negotiated_and_capped() -> None:
    events: list[TftpRequestEvent] = []
    rec = Recorder()

    async def main() -> None:
        async with TftpServer(FILES, HOST, 0, max_blksize=1024, on_request=events.append, capture=rec) as srv:
            data = await tftp_get(HOST, srv.port, "ITLFile.tlv", blksize=4096, tsize=True)
            assert data == FILES["ITLFile.tlv"]
            oacks = [p for p in rec.sent_by(lambda _p: True) if isinstance(p, OptionAck)]
            assert oacks == [OptionAck(options={"blksize": "1024", "tsize": "10240"})]
            blocks = [p for p in rec.sent_by(lambda _p: True) if isinstance(p, Data)]
            assert len(blocks) == 11 and all(len(b.data) == 1024 for b in blocks[:-1]) and not blocks[-1].data
            await asyncio.sleep(0.05)
    run(main())
    assert events[-1].outcome == "ok" and events[-1].blksize == 1024 and events[-1].size == 10240


def test_no_options_means_512_and_no_oack() -> None:
    rec = Recorder()

    async def main() -> None:
        async with TftpServer(FILES, HOST, 0, capture=rec) as srv:
            assert await tftp_get(HOST, srv.port, "exact512.bin") == FILES["exact512.bin"]
    run(main())
    sent = [decode(p) for _s, _d, p in rec.packets]
    assert not any(isinstance(p, OptionAck) for p in sent)
    data = [p for p in sent if isinstance(p, Data)]
    assert [len(p.data) for p in data] == [512, 512, 512, 512, 0]


@pytest.mark.parametrize("mode", MODES)
def test_not_found_and_traversal_refused_server_keeps_serving(mode: str) -> None:
    events: list[TftpRequestEvent] = []

    async def main() -> None:
        async with TftpServer(FILES, HOST, 0, tid_mode=mode, on_request=events.append) as srv:  # type: ignore[arg-type]
            with pytest.raises(TransportError) as ei:
                await tftp_get(HOST, srv.port, "CTLSEP001122334455.tlv")
            assert (ei.value.kind, ei.value.code) == ("not-found", 1)
            for bad in ("../etc/passwd", "/etc/passwd", "a\\b", "x/../../y"):
                with pytest.raises(TransportError) as ei:
                    await tftp_get(HOST, srv.port, bad)
                assert (ei.value.kind, ei.value.code) == ("refused", 2)
            assert await tftp_get(HOST, srv.port, "small.txt") == FILES["small.txt"]
            await asyncio.sleep(0.02)
    run(main())
    outcomes = [e.outcome for e in events]
    assert outcomes[:5] == ["not-found", "refused", "refused", "refused", "refused"]
    assert outcomes[-1] == "ok"


def test_root_directory_source(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f.bin").write_bytes(b"x" * 1000)
    (tmp_path.parent / "outside.bin").write_bytes(b"secret")
    (tmp_path / "link.bin").symlink_to(tmp_path.parent / "outside.bin")

    async def main() -> None:
        async with TftpServer(tmp_path, HOST, 0) as srv:
            assert await tftp_get(HOST, srv.port, "sub/f.bin") == b"x" * 1000
            with pytest.raises(TransportError) as ei:
                await tftp_get(HOST, srv.port, "link.bin")
            assert ei.value.kind == "not-found"
    run(main())


def test_wrq_and_malformed_answered_service_continues() -> None:
    async def main() -> None:
        async with TftpServer(FILES, HOST, 0) as srv:
            raw = RawClient()
            try:
                await raw.send(b"\x00\x02upload.bin\x00octet\x00", (HOST, srv.port))
                pkt = decode((await raw.recv())[0])
                assert isinstance(pkt, Error) and pkt.code == 2
                for garbage in (b"\x00", b"\x00\x01noterminator", b"\x00\x09zz", b"\x00\x01f\x00bogus\x00"):
                    await raw.send(garbage, (HOST, srv.port))
                    pkt = decode((await raw.recv())[0])
                    assert isinstance(pkt, Error) and pkt.code == 4, garbage
                await raw.send(encode(Ack(block=3)), (HOST, srv.port))  # stray ACK: unknown TID
                pkt = decode((await raw.recv())[0])
                assert isinstance(pkt, Error) and pkt.code == 5
                await raw.send(b"\x00\x01f\x00octet\x00blksize\x007\x00", (HOST, srv.port))
                pkt = decode((await raw.recv())[0])
                assert isinstance(pkt, Error) and pkt.code == 8
            finally:
                raw.close()
            assert await tftp_get(HOST, srv.port, "ITLFile.tlv", blksize=1428) == FILES["ITLFile.tlv"]
    run(main())


@pytest.mark.parametrize("mode", MODES)
def test_duplicate_ack_not_answered(mode: str) -> None:
    """No Sorcerer's Apprentice: a duplicated ACK gets no second DATA."""
    async def main() -> None:
        async with TftpServer(FILES, HOST, 0, tid_mode=mode, timeout=2.0) as srv:  # type: ignore[arg-type]
            raw = RawClient()
            try:
                await raw.send(encode(ReadRequest(filename="exact512.bin")), (HOST, srv.port))
                d1, tid = await raw.recv()
                assert decode(d1) == Data(block=1, data=FILES["exact512.bin"][:512])
                if mode == "ephemeral":
                    assert tid[1] != srv.port
                await raw.send(encode(Ack(block=1)), tid)
                await raw.send(encode(Ack(block=1)), tid)
                d2, _ = await raw.recv()
                assert decode(d2) == Data(block=2, data=FILES["exact512.bin"][512:1024])
                with pytest.raises(TimeoutError):
                    await raw.recv(timeout=0.3)
                await raw.send(encode(Error(code=0, message="bye")), tid)
            finally:
                raw.close()
    run(main())


def test_wrong_tid_gets_error_5() -> None:
    async def main() -> None:
        async with TftpServer(FILES, HOST, 0, timeout=2.0) as srv:
            raw, other = RawClient(), RawClient()
            try:
                await raw.send(encode(ReadRequest(filename="exact512.bin")), (HOST, srv.port))
                _, tid = await raw.recv()
                await other.send(encode(Ack(block=1)), tid)
                pkt = decode((await other.recv())[0])
                assert isinstance(pkt, Error) and pkt.code == 5
                await raw.send(encode(Ack(block=1)), tid)  # the real client continues
                assert decode((await raw.recv())[0]) == Data(block=2, data=FILES["exact512.bin"][512:1024])
            finally:
                raw.close()
                other.close()
    run(main())


@pytest.mark.parametrize("mode", MODES)
def test_retransmission_under_injected_loss(mode: str) -> None:
    rec = Recorder()

    async def main() -> None:
        async with TftpServer(FILES, HOST, 0, tid_mode=mode, timeout=0.03, retries=20, loss=0.25, seed=7,  # type: ignore[arg-type]
                              capture=rec) as srv:
            data = await tftp_get(HOST, srv.port, "ITLFile.tlv", blksize=512, timeout=0.03, retries=20)
            assert data == FILES["ITLFile.tlv"]
    run(main())
    sent_data = [p for s, _d, p in rec.packets if p[:2] == b"\x00\x03"]
    assert len(sent_data) > 21  # 21 blocks, some of them retransmitted


@pytest.mark.parametrize("pooled", [False, True])
def test_fetcher_counts_its_own_retransmissions(pooled: bool) -> None:
    """Each timeout that sends the RRQ/ACK again is counted by the fetcher that asked (RFC 1350)."""
    async def main() -> None:
        async with TftpServer(FILES, HOST, 0, timeout=0.03, retries=20, loss=0.25, seed=7) as srv, \
                TftpClientPool(max_sockets=2) as pool:
            f = TftpFetcher(HOST, srv.port, timeout=0.03, retries=20, pool=pool if pooled else None)
            before = tftp_client.client_stats["retransmits"]
            assert await f.fetch("ITLFile.tlv") == FILES["ITLFile.tlv"]
            assert f.retransmits > 0  # 21 blocks at 25% loss: some were asked for again
            assert f.retransmits == tftp_client.client_stats["retransmits"] - before
            both = HttpThenTftpFetcher(HttpFetcher(HOST, 1), f)
            assert both.retransmits == f.retransmits  # HTTP first: the TFTP fallback's count
    run(main())


def test_capture_to_pcap_round_trip(tmp_path: Path) -> None:
    pcap = tmp_path / "tftp.pcap"

    async def main() -> None:
        with PcapWriter(pcap) as w:
            async with TftpServer(FILES, HOST, 0, capture=w) as srv:
                assert await tftp_get(HOST, srv.port, "ITLFile.tlv", blksize=1428) == FILES["ITLFile.tlv"]
                await asyncio.sleep(0.02)
    run(main())
    pkts = list(read_pcap(pcap))
    assert all(p.proto == "udp" and p.src == HOST for p in pkts)
    body = b"".join(p.payload[4:] for p in pkts if p.payload[:2] == b"\x00\x03")
    assert body == FILES["ITLFile.tlv"]
    assert pkts[0].payload.startswith(b"\x00\x01ITLFile.tlv\x00")


def test_delay_injection_and_observer() -> None:
    events: list[TftpRequestEvent] = []

    async def main() -> None:
        async with TftpServer(FILES, HOST, 0, delay=0.01, on_request=events.append) as srv:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            assert await tftp_get(HOST, srv.port, "exact512.bin", blksize=512) == FILES["exact512.bin"]
            assert loop.time() - t0 >= 0.05  # 5 DATA packets, each delayed
            await asyncio.sleep(0.02)
    run(main())
    assert [(e.filename, e.outcome) for e in events] == [("exact512.bin", "ok")]


def test_timeout_when_server_down() -> None:
    async def main() -> None:
        silent = RawClient()  # bound, never answers
        try:
            with pytest.raises(TransportError) as ei:
                await tftp_get(HOST, silent.sock.getsockname()[1], "ITLFile.tlv", timeout=0.05, retries=2)
            assert ei.value.kind == "timeout"
        finally:
            silent.close()
    run(main())


def _closed_port() -> int:
    """A UDP port of HOST that nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
    return port


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="IP_RECVERR is Linux's")


@linux_only
def test_nothing_listening_is_unreachable_at_once() -> None:
    """A request to a port nobody listens on (no lab serve, a wrong --tftp port) fails on the ICMP port
    unreachable, not after every retry: 3 retries of 2 s would take 8 s."""
    async def main() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        port = _closed_port()
        with pytest.raises(TransportError) as ei:
            await tftp_get(HOST, port, "ITLFile.tlv", timeout=2.0, retries=3)
        assert ei.value.kind == "unreachable"
        assert ei.value.message == f"nothing listens on {HOST}:{port} (ICMP port unreachable)"
        return loop.time() - t0
    assert run(main()) < 1.5


@linux_only
def test_client_socket_is_bound_by_its_request() -> None:
    """A transfer's socket is not bound before the RRQ (one syscall less a transfer, issue #6): the
    kernel gives it an ephemeral port on every address at the first sendto, which the server sees."""
    async def main() -> None:
        silent = RawClient()
        ep = tftp_client._Endpoint(socket.AF_INET)
        try:
            assert ep.transport.sock.getsockname() == ("0.0.0.0", 0)
            assert ep.transport.sock.getblocking() is False
            transfer = asyncio.ensure_future(tftp_client._run(
                ep, (HOST, silent.sock.getsockname()[1]), "ITLFile.tlv", blksize=None, timeout=0.05,
                retries=0, tsize=False, max_size=1 << 20))
            await asyncio.sleep(0.01)
            port = ep.transport.sock.getsockname()[1]
            assert port != 0
            data, addr = silent.sock.recvfrom(600)
            assert addr == (HOST, port) and data.startswith(b"\x00\x01ITLFile.tlv\x00")
            with pytest.raises(TransportError):
                await transfer
        finally:
            ep.transport.close()
            silent.close()
    run(main())


def test_icmp_error_about_another_address_is_ignored() -> None:
    """An ICMP error for a datagram sent elsewhere (a finished transfer's TID on a reused pool socket)
    does not end the transfer under way: a silent server still means a timeout."""
    async def main() -> None:
        silent = RawClient()
        ep = tftp_client._Endpoint(socket.AF_INET)
        try:
            transfer = asyncio.ensure_future(tftp_client._run(
                ep, (HOST, silent.sock.getsockname()[1]), "ITLFile.tlv", blksize=None, timeout=0.1,
                retries=2, tsize=False, max_size=1 << 20))
            await asyncio.sleep(0.02)
            ep.transport.sendto(b"stale ACK", (HOST, _closed_port()))
            with pytest.raises(TransportError) as ei:
                await transfer
            assert ei.value.kind == "timeout"
        finally:
            ep.transport.close()
            silent.close()
    run(main())


def test_client_refuses_too_large() -> None:
    async def main() -> None:
        async with TftpServer(FILES, HOST, 0) as srv:
            with pytest.raises(TransportError) as ei:
                await tftp_get(HOST, srv.port, "large.bin", blksize=1428, max_size=50_000)
            assert ei.value.kind == "too-large"
            with pytest.raises(TransportError) as ei:
                await tftp_get(HOST, srv.port, "large.bin", tsize=True, max_size=50_000)
            assert ei.value.kind == "too-large"
    run(main())


def test_server_limits() -> None:
    async def main() -> None:
        async with TftpServer(FILES, HOST, 0, max_file_size=100_000, max_transfers=1, timeout=2.0) as srv:
            with pytest.raises(TransportError) as ei:
                await tftp_get(HOST, srv.port, "large.bin")
            assert ei.value.kind == "error"
            raw = RawClient()
            try:
                await raw.send(encode(ReadRequest(filename="exact512.bin")), (HOST, srv.port))
                await raw.recv()  # transfer 1 is now open and waits for our ACK
                with pytest.raises(TransportError, match="busy"):
                    await tftp_get(HOST, srv.port, "small.txt")
            finally:
                raw.close()
    run(main())


@pytest.mark.parametrize("mode", MODES)
def test_pool_many_concurrent(mode: str) -> None:
    async def main() -> None:
        async with (
            TftpServer(FILES, HOST, 0, tid_mode=mode) as srv,  # type: ignore[arg-type]
            TftpClientPool(max_sockets=32, blksize=1428) as pool,
        ):
            names = ["ITLFile.tlv", "small.txt", "exact1428.bin", "empty"] * 50
            got = await asyncio.gather(*(pool.get(HOST, srv.port, n) for n in names))
            assert got == [FILES[n] for n in names]
            with pytest.raises(TransportError):
                await pool.get(HOST, srv.port, "missing")
    run(main())


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")

    async def main() -> None:
        try:
            srv = await TftpServer(FILES, "::1", 0).start()
        except OSError:
            pytest.skip("::1 not available")
        try:
            assert await tftp_get("::1", srv.port, "ITLFile.tlv", blksize=1428) == FILES["ITLFile.tlv"]
        finally:
            await srv.close()
    run(main())


@pytest.mark.parametrize("mode", MODES)
def test_random_datagrams_never_stop_the_server(mode: str) -> None:
    import random

    rng = random.Random(1234)
    events: list[TftpRequestEvent] = []

    async def main() -> None:
        async with TftpServer(FILES, HOST, 0, tid_mode=mode, timeout=0.2, retries=1,  # type: ignore[arg-type]
                              on_request=events.append) as srv:
            raw = RawClient()
            try:
                for i in range(300):
                    op = rng.choice([b"", b"\x00\x01", b"\x00\x02", b"\x00\x03", b"\x00\x04", b"\x00\x05",
                                     b"\x00\x06", bytes([rng.randrange(256), rng.randrange(256)])])
                    body = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
                    if i % 3 == 0:
                        body = rng.choice([b"ITLFile.tlv\x00octet\x00", b"small.txt\x00OCTET\x00blksize\x00",
                                           b"x\x00octet\x00tsize\x00zz\x00"]) + body
                    await raw.send(op + body, (HOST, srv.port))
                    with contextlib.suppress(TimeoutError):  # drain any answer
                        while True:
                            await raw.recv(timeout=0.001)
            finally:
                raw.close()
            assert await tftp_get(HOST, srv.port, "ITLFile.tlv", blksize=1428) == FILES["ITLFile.tlv"]
    run(main())
    assert {e.outcome for e in events} <= {"ok", "not-found", "refused", "malformed", "option-refused",
                                            "aborted", "timeout"}


def test_pool_dally_reacks_late_final_data_and_drops_failed_sockets() -> None:
    async def main() -> None:
        listen, tid = RawClient(), RawClient()
        try:
            async with TftpClientPool(max_sockets=1) as pool:
                task = asyncio.create_task(pool.get(HOST, listen.sock.getsockname()[1], "f", timeout=0.5))
                rrq, client = await listen.recv()
                assert decode(rrq) == ReadRequest(filename="f")
                final = encode(Data(block=1, data=b"tiny"))
                await tid.send(final, client)
                assert decode((await tid.recv())[0]) == Ack(block=1)
                assert await task == b"tiny"
                await tid.send(final, client)  # late duplicate: the reused socket re-ACKs it
                assert decode((await tid.recv())[0]) == Ack(block=1)
                # a failing transfer closes its socket: the next one comes from a new port
                with pytest.raises(TransportError):
                    await pool.get(HOST, listen.sock.getsockname()[1], "g", timeout=0.02, retries=0)
                await listen.recv()
                task = asyncio.create_task(pool.get(HOST, listen.sock.getsockname()[1], "h", timeout=0.5))
                _, client2 = await listen.recv()
                assert client2 != client
                await tid.send(encode(Error(code=1, message="File not found")), client2)
                with pytest.raises(TransportError):
                    await task
        finally:
            listen.close()
            tid.close()
    run(main())


# --- server: DATA packets built once per (content, blksize) -------------------------------------------
def test_packet_cache_shares_packets_and_never_serves_a_changed_file() -> None:
    """The lab rewrites a file (same name, same length, same last bytes): the next RRQ gets the new bytes."""
    v1 = os.urandom(5000) + b"same-tail-32-bytes-for-both-vers"
    v2 = os.urandom(5000) + b"same-tail-32-bytes-for-both-vers"
    served = {"CTLSEP001122334455.tlv": v1, "CTLSEP001122334466.tlv": v1}

    async def main() -> None:
        async with TftpServer(served, HOST, 0, tid_mode="shared") as srv:
            cache = srv.packet_cache
            assert await tftp_get(HOST, srv.port, "CTLSEP001122334455.tlv") == v1
            assert await tftp_get(HOST, srv.port, "CTLSEP001122334466.tlv") == v1  # same bytes: shared
            assert (cache.misses, cache.hits, len(cache)) == (1, 1, 1)
            served["CTLSEP001122334455.tlv"] = bytes(v2)  # a new object with new content
            assert await tftp_get(HOST, srv.port, "CTLSEP001122334455.tlv") == v2
            assert await tftp_get(HOST, srv.port, "CTLSEP001122334455.tlv", blksize=1428) == v2
            assert await tftp_get(HOST, srv.port, "CTLSEP001122334466.tlv") == v1
            assert (cache.misses, len(cache)) == (3, 3)  # v2 at 512 and 1428; v1 still cached
    run(main())


def test_packet_cache_bounds_and_large_files_sliced_per_block() -> None:
    from phoneemu.net.tftp_server import PacketCache

    cache = PacketCache(max_bytes=80_000, max_blocks=40)  # files above 10 000 bytes are not cached
    assert cache.packets(b"x" * 10_001, 512) is None
    assert cache.packets(b"x" * 2000, 50) is None  # 41 blocks: more than max_blocks
    pkts = cache.packets(b"ab" * 700, 512)
    assert pkts == [None, None, None]  # built by the transfers, as they send each block
    assert cache.packets(b"ab" * 700, 512) is pkts and cache.packets(b"ab" * 700, 1024) is not pkts
    tail = b"T" * 32
    for i in range(6):  # one fingerprint, six contents: the bucket keeps the last 4
        body = bytes([i]) * 100 + tail
        assert cache.packets(body, 512) == [None]
    assert len(cache) == 2 + 4
    for _i in range(20):  # 20 x ~9 KB > 80 000: least recently used files go
        cache.packets(os.urandom(9000), 512)
    assert cache.size <= 80_000 and len(cache) < 20

    files = {"big.bin": os.urandom(20_000), "mid.bin": os.urandom(3000)}
    rec = Recorder()

    async def main() -> None:
        async with TftpServer(files, HOST, 0, cache_bytes=80_000, capture=rec) as srv:
            assert await tftp_get(HOST, srv.port, "big.bin", blksize=1024) == files["big.bin"]
            assert len(srv.packet_cache) == 0
            for _ in range(2):
                assert await tftp_get(HOST, srv.port, "mid.bin") == files["mid.bin"]
            assert (srv.packet_cache.misses, srv.packet_cache.hits) == (1, 1)
    run(main())
    data = [p for p in rec.sent_by(lambda _p: True) if isinstance(p, Data)]
    mid = [p for p in data if len(p.data) in (512, 440)]  # big.bin's blocks are 1024 and 544 bytes
    assert [p.block for p in mid] == [1, 2, 3, 4, 5, 6] * 2
    assert b"".join(p.data for p in mid[:6]) == files["mid.bin"] == b"".join(p.data for p in mid[6:])


@pytest.mark.parametrize("mode", MODES)
def test_requests_that_do_not_belong_to_a_transfer(mode: str, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """Mid-transfer, a repeated RRQ is ignored (our timer retransmits) and any other request to the
    transfer's own port aborts the transfer with ERROR 4 (ephemeral TIDs; with a shared TID the next
    request of the same peer supersedes it); mail mode is refused; a provider that raises is ERROR 0
    "server error" (logged), a file above ``max_file_size`` "file too large"; each is one logged
    outcome and the server goes on."""
    events: list[TftpRequestEvent] = []
    (tmp_path / "big.bin").write_bytes(b"b" * 3000)

    def provider(name: str) -> bytes | None:
        if name == "boom":
            raise RuntimeError("disk on fire")
        return FILES.get(name)

    async def main() -> None:
        async with TftpServer(provider, HOST, 0, tid_mode=mode, on_request=events.append) as srv, \
                TftpServer(tmp_path, HOST, 0, tid_mode=mode, max_file_size=2048,
                           on_request=events.append) as small:
            raw = RawClient()
            try:
                rrq = encode(ReadRequest(filename="exact512.bin"))
                await raw.send(rrq, (HOST, srv.port))
                d1, tid = await raw.recv()
                assert decode(d1) == Data(block=1, data=FILES["exact512.bin"][:512])
                if mode == "ephemeral":
                    await raw.send(rrq, tid)  # the same RRQ again, to the transfer's port
                    with pytest.raises(TimeoutError):
                        await raw.recv(timeout=0.2)
                await raw.send(encode(Ack(block=1)), tid)
                assert decode((await raw.recv())[0]) == Data(block=2, data=FILES["exact512.bin"][512:1024])
                await raw.send(b"\x00\x02upload.bin\x00octet\x00", tid)
                pkt = decode((await raw.recv())[0])
                # shared: the transfer's port is the server's, where a WRQ is a new (refused) request
                assert isinstance(pkt, Error) and pkt.code == (4 if mode == "ephemeral" else 2), pkt
                for request, code, message in (
                        (b"\x00\x01small.txt\x00mail\x00", 4, "mail mode not supported"),
                        (b"\x00\x01boom\x00octet\x00", 0, "server error"),
                ):
                    await raw.send(request, (HOST, srv.port))
                    pkt = decode((await raw.recv())[0])
                    assert isinstance(pkt, Error) and (pkt.code, pkt.message) == (code, message), pkt
                await raw.send(b"\x00\x01big.bin\x00octet\x00", (HOST, small.port))
                pkt = decode((await raw.recv())[0])
                assert isinstance(pkt, Error) and pkt.message == "file too large", pkt
            finally:
                raw.close()
            assert await tftp_get(HOST, srv.port, "small.txt") == FILES["small.txt"]

    with caplog.at_level("ERROR"):
        run(main())
    outcomes = [(e.filename, e.outcome) for e in events]
    shared = [("upload.bin", "refused")] if mode == "shared" else []
    assert outcomes == [("exact512.bin", "aborted"), *shared, ("small.txt", "refused"), ("boom", "error"),
                        ("big.bin", "too-large"), ("small.txt", "ok")], outcomes
    why = ("unexpected WriteRequest during transfer" if mode == "ephemeral"
           else "superseded by a new request from the same peer")  # shared: one transfer per peer
    assert why in events[0].detail, events[0]
    assert any("provider failed for 'boom'" in r.getMessage() for r in caplog.records)


def test_a_servers_error_message_is_shown_with_its_control_characters_escaped() -> None:
    """A TFTP ERROR's text reached the terminal as it was: a server cleared the screen and printed a fake
    verdict (``\\x1b[2J ... config accepted``)."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        hostile = "\x1b]0;PWNED\x07\x1b[2Jfake: config accepted\nline"

        class Server(asyncio.DatagramProtocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.transport.sendto(encode(Error(code=0, message=hostile)), addr)

        transport, _ = await loop.create_datagram_endpoint(Server, local_addr=(HOST, 0))
        try:
            with pytest.raises(TransportError) as exc:
                await tftp_get(HOST, transport.get_extra_info("sockname")[1], "CTLFile.tlv", timeout=2)
        finally:
            transport.close()
        text = str(exc.value)
        assert "\x1b" not in text and "\x07" not in text and "\n" not in text
        assert "\\x1b[2Jfake: config accepted\\x0aline" in text, text
    run(main())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ICMP errors of UDP sockets: IP_RECVERR")
@pytest.mark.parametrize("server_host", [HOST, "::"], ids=["ipv4", "dual-stack"])
@pytest.mark.parametrize("mode", MODES)
def test_a_transfer_to_a_closed_client_port_ends_at_the_icmp_port_unreachable(mode: str,
                                                                              server_host: str) -> None:
    """Before: the transfer socket ignored the ICMP error and resent DATA 1 until its retries ran out
    (outcome ``timeout``); now the first resend meets the closed port and the transfer is ``aborted``
    — in ``shared`` mode too (there it was still ignored), where the error names the peer, and on a
    dual-stack server (``::``) for an IPv4 client too (its ICMPv4 error was not reported)."""
    events: list[TftpRequestEvent] = []
    if server_host == "::":
        try:
            socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()
        except OSError as exc:
            pytest.skip(f"no IPv6 sockets here: {exc}")

    async def main() -> None:
        async with TftpServer(FILES, server_host, 0, timeout=0.2, retries=5, on_request=events.append,
                              tid_mode=mode) as srv:  # type: ignore[arg-type]
            client = RawClient()
            await client.send(encode(ReadRequest(filename="large.bin")), (HOST, srv.port))
            data, _tid = await client.recv()
            assert decode(data) == Data(block=1, data=FILES["large.bin"][:512])
            client.close()  # the phone went away: its port is closed, the kernel answers ICMP
            for _ in range(100):  # bounded: 5 s at most (the retries alone would take 1.2 s)
                if events:
                    break
                await asyncio.sleep(0.05)
            assert srv.active_transfers == 0

    run(main())
    assert [(e.filename, e.outcome, e.detail) for e in events] == [
        ("large.bin", "aborted", "client port unreachable (ICMP)")]
