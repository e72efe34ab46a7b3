"""Audit probes: the phone's TFTP client against a hostile server over real loopback sockets."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from phoneemu.errors import TransportError
from phoneemu.net.fetch import TftpFetcher
from phoneemu.net.tftp_client import TftpClientPool, tftp_get
from tests.helpers import run
from tests.tftp_helpers import udp_server


def _dripping_server(seconds: float, gap: float) -> int:
    """Answer one RRQ with a new full 512-byte DATA block every ``gap`` s (inside the client's per-packet
    timeout) for ``seconds``: a transfer that never ends and never stalls."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))

    def serve() -> None:
        _data, addr = s.recvfrom(2048)
        t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t.bind(("127.0.0.1", 0))
        block, end = 1, time.monotonic() + seconds
        while time.monotonic() < end:
            t.sendto(b"\x00\x03" + block.to_bytes(2, "big") + b"a" * 512, addr)
            block = (block + 1) & 0xFFFF
            time.sleep(gap)
        t.close()
        s.close()

    threading.Thread(target=serve, daemon=True).start()
    return int(s.getsockname()[1])


@pytest.mark.parametrize("via", ["tftp_get", "pool", "fetcher"])
def test_a_server_dripping_blocks_is_cut_at_max_time(via: str) -> None:
    port = _dripping_server(4.0, 0.05)

    async def go() -> bytes:
        if via == "tftp_get":
            return await tftp_get("127.0.0.1", port, "f", timeout=0.3, retries=1, max_time=0.6)
        if via == "fetcher":
            return await TftpFetcher("127.0.0.1", port, timeout=0.3, retries=1, max_time=0.6).fetch("f")
        async with TftpClientPool(timeout=0.3, retries=1, max_time=0.6) as pool:
            return await pool.get("127.0.0.1", port, "f")

    start = time.monotonic()
    with pytest.raises(TransportError) as info:
        run(go(), limit=3.0)
    assert info.value.kind == "timeout"
    assert "TFTP transfer of f took longer than 0.6 s" in str(info.value)
    assert time.monotonic() - start < 2.0


def test_max_time_does_not_cut_a_transfer_that_ends_in_time() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])

    def serve() -> None:
        _data, addr = s.recvfrom(2048)
        s.sendto(b"\x00\x03\x00\x01hi", addr)
        s.close()

    threading.Thread(target=serve, daemon=True).start()
    assert run(tftp_get("127.0.0.1", port, "f", timeout=0.5, retries=1, max_time=2.0), limit=3.0) == b"hi"


def _scripted_server(script: list[bytes], *, expect_replies: int) -> tuple[int, list[bytes], threading.Event]:
    """Answer one RRQ: send each packet of ``script`` from a fresh TID after the client's previous reply
    (the first right after the RRQ); collect the client's replies (at most ``expect_replies``)."""

    def serve(s: socket.socket, got: list[bytes]) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as t:
            t.bind(("127.0.0.1", 0))
            t.settimeout(1.5)
            rrq, addr = s.recvfrom(2048)
            got.append(rrq)
            for pkt in script:
                t.sendto(pkt, addr)
                if len(got) <= expect_replies:
                    got.append(t.recvfrom(2048)[0])

    return udp_server(serve, timeout=3)


def _error_code(pkt: bytes) -> int:
    assert pkt[:2] == b"\x00\x05", pkt
    return int.from_bytes(pkt[2:4], "big")


def test_a_data_block_larger_than_the_block_size_fails_the_transfer_and_tells_the_server() -> None:
    port, got, done = _scripted_server([b"\x00\x03\x00\x01" + b"x" * 600], expect_replies=1)
    with pytest.raises(TransportError) as info:
        run(tftp_get("127.0.0.1", port, "f", timeout=0.5, retries=1), limit=3.0)
    assert info.value.kind == "protocol" and "DATA 1 has 600 bytes > blksize 512" in str(info.value)
    done.wait(3)
    assert _error_code(got[-1]) == 4  # illegal operation


@pytest.mark.parametrize(("oack", "why"), [
    (b"\x00\x06blksize\x001428\x00", "blksize 1428 above requested 1024"),
    (b"\x00\x06blksize\x001024\x00timeout\x005\x00", "options we did not ask for: ['timeout']"),
])
def test_an_oack_with_options_not_asked_for_is_refused(oack: bytes, why: str) -> None:
    port, got, done = _scripted_server([oack], expect_replies=1)
    with pytest.raises(TransportError) as info:
        run(tftp_get("127.0.0.1", port, "f", blksize=1024, timeout=0.5, retries=1), limit=3.0)
    assert info.value.kind == "protocol" and "bad OACK" in str(info.value) and why in str(info.value)
    done.wait(3)
    assert _error_code(got[-1]) == 8  # option negotiation refused (RFC 2347)


def test_a_repeated_oack_is_acknowledged_again_and_the_transfer_completes() -> None:
    """Our ACK 0 lost on the way: the server sends its OACK again; the client ACKs 0 again."""
    oack = b"\x00\x06blksize\x001024\x00"
    port, got, done = _scripted_server([oack, oack, b"\x00\x03\x00\x01" + b"y" * 10], expect_replies=3)
    assert run(tftp_get("127.0.0.1", port, "f", blksize=1024, timeout=0.5, retries=1), limit=3.0) == b"y" * 10
    done.wait(3)
    assert got[1:] == [b"\x00\x04\x00\x00", b"\x00\x04\x00\x00", b"\x00\x04\x00\x01"]
