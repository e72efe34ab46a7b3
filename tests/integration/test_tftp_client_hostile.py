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
