"""A phone against a "dripping" TFTP server (each DATA block just inside the per-packet timeout) gives up
after its whole-transfer cap and says so (our convention, :mod:`phoneemu.phone.phone`; spec §H.3),
single phone, scenario phone group and fleet alike."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

from phoneemu.fleet.engine import FleetSpec, fetcher_for, make_phones, run_shard
from phoneemu.net.fetch import HttpThenTftpFetcher, TftpFetcher
from phoneemu.phone import status
from phoneemu.phone.boot import BootTarget
from phoneemu.phone.phone import DEFAULT_TFTP_MAX_TIME, Phone, default_tftp_max_time
from phoneemu.phone.profile import get_profile
from tests.helpers import run

HOST = "127.0.0.1"
MAC = "0A00000000D1"
#: the dripping phones' wait for each packet (three of the server's 0.1 s gaps) and their cap (the phone
#: gives up its CTL, ITL and config transfers at it: the test's length)
WAIT_S, CAP_S = 0.3, 0.5


class DrippingServer:
    """Answers every RRQ (at most ``max_requests``) from a fresh port with a new 512-byte DATA block every
    ``gap`` seconds for at most ``seconds``: transfers that never end and never stall. Loopback only;
    every loop bounded in count and time."""

    def __init__(self, *, gap: float = 0.1, seconds: float = 8.0, max_requests: int = 20) -> None:
        self.gap, self.seconds, self.max_requests = gap, seconds, max_requests
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.05)  # how long close() may wait for the listener to see the stop
        self.port = int(self.sock.getsockname()[1])
        self.requests: list[bytes] = []
        self.errors: list[bytes] = []  # ERROR packets the client sent back (ERROR 0 at the cap)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._listen, daemon=True)]
        self._threads[0].start()

    def _listen(self) -> None:
        end = time.monotonic() + 60.0
        while not self._stop.is_set() and time.monotonic() < end and len(self.requests) < self.max_requests:
            try:
                data, addr = self.sock.recvfrom(2048)
            except (TimeoutError, OSError):
                continue
            if data[:2] != b"\x00\x01":
                continue
            self.requests.append(data)
            t = threading.Thread(target=self._drip, args=(addr,), daemon=True)
            self._threads.append(t)
            t.start()

    def _drip(self, addr: tuple[str, int]) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST, 0))
        s.setblocking(False)
        block, end = 1, time.monotonic() + self.seconds
        try:
            while not self._stop.is_set() and time.monotonic() < end:
                s.sendto(b"\x00\x03" + block.to_bytes(2, "big") + b"a" * 512, addr)
                block = (block + 1) & 0xFFFF
                self._stop.wait(self.gap)
                for _ in range(64):  # drain the ACKs (and the client's ERROR when it gives up)
                    try:
                        pkt = s.recv(2048)
                    except BlockingIOError:
                        break
                    if pkt[:2] == b"\x00\x05":
                        self.errors.append(pkt)
                        return
        finally:
            s.close()

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5.0)
        self.sock.close()


def test_the_default_cap_is_60_s_or_twice_one_blocks_retry_budget() -> None:
    assert default_tftp_max_time(1.0, 5) == DEFAULT_TFTP_MAX_TIME == 60.0
    assert default_tftp_max_time(10.0, 5) == 120.0
    p = Phone(mac=MAC, profile=get_profile("cp-8861"), flash=None, clock=lambda: 0)
    assert p.fetch_max_time == 60.0
    f = p.fetcher_for(BootTarget(host=HOST, use_http=False))
    assert isinstance(f, TftpFetcher) and f.max_time == 60.0
    h = p.fetcher_for(BootTarget(host=HOST, http_port=1))
    assert isinstance(h, HttpThenTftpFetcher) and h.tftp.max_time == 60.0


def test_a_phone_gives_up_a_dripping_transfer_at_its_cap_and_says_so() -> None:
    srv = DrippingServer()
    try:
        p = Phone(mac=MAC, profile=get_profile("cp-8861"), flash=None, clock=lambda: 1_780_000_000,
                  fetch_timeout=WAIT_S, fetch_retries=1, fetch_max_time=CAP_S)
        r = run(p.boot(BootTarget(host=HOST, tftp_port=srv.port, use_http=False)), limit=30.0)
    finally:
        srv.close()
    assert not r.ok
    first = srv.requests[0][2:].split(b"\x00")[0].decode()
    cut = [line for line in r.timeline if f"took longer than {CAP_S:g} s" in line]
    assert cut and f"TFTP transfer of {first} took longer than {CAP_S:g} s (at block " in cut[0], r.timeline
    assert status.TFTP_TIMEOUT in r.statuses
    assert srv.errors and srv.errors[0][2:4] == b"\x00\x00"  # ERROR 0 told the server


SCENARIO = """\
reproduces: spec H.3
phones:
  p: {mac: 0B0000000031, profile: cp-8861, tftp: {timeout_ms: 500, retries: 2, max_time_ms: 900}}
  q: {mac: 0B0000000032, profile: cp-8861, tftp: {timeout_ms: 200}}
steps:
  - boot: p
  - expect: {phones: p, itl: installed}
"""


def test_a_groups_tftp_max_time_reaches_its_phones(tmp_path: Path) -> None:
    from phoneemu.scenario.loader import load_text
    from phoneemu.scenario.world import World

    async def main_() -> list[float]:
        world = World(load_text(SCENARIO, "drip.yaml"), tmp_path, start_time=1_780_272_000)
        try:
            await world.start()
            return [world.phones[m].phone.fetch_max_time for m in ("0B0000000031", "0B0000000032")]
        finally:
            await world.close()

    assert asyncio.run(main_()) == [0.9, 60.0]  # a group without max_time_ms: the phone's default


def test_a_scenario_refuses_a_max_time_out_of_range() -> None:
    import pytest

    from phoneemu.errors import ScenarioError
    from phoneemu.scenario.loader import load_text

    with pytest.raises(ScenarioError, match="max_time_ms"):
        load_text(SCENARIO.replace("max_time_ms: 900", "max_time_ms: 5"), "bad.yaml")


def test_the_fleet_uses_the_same_cap() -> None:
    target = BootTarget(host=HOST, use_http=False)
    default = FleetSpec(target=target, count=1, fetch_timeout=2.0, fetch_retries=5, blksize=1024)
    capped = FleetSpec(target=target, count=1, fetch_timeout=0.5, fetch_retries=1, fetch_max_time=0.8,
                       blksize=1024)
    (d,) = make_phones(default, [0x0A0000000001], pool=None)
    (c,) = make_phones(capped, [0x0A0000000002], pool=None)
    assert d.fetch_max_time == default_tftp_max_time(2.0, 5) and c.fetch_max_time == 0.8
    f = fetcher_for(c, capped, None)  # the blksize fetcher the fleet builds instead of the phone's
    assert isinstance(f, TftpFetcher) and f.max_time == 0.8 and f.blksize == 1024


def test_a_fleet_phone_gives_up_a_dripping_transfer_at_the_cap() -> None:
    srv = DrippingServer()
    try:
        spec = FleetSpec(target=BootTarget(host=HOST, tftp_port=srv.port, use_http=False), count=1,
                         fetch_timeout=WAIT_S, fetch_retries=1, fetch_max_time=CAP_S, keep_records=True)
        result = run(run_shard(spec, [0x0A0000000003]), limit=30.0)
    finally:
        srv.close()
    (rec,) = result.records
    assert rec.outcome != "ok"
    assert srv.errors and all(e[2:4] == b"\x00\x00" for e in srv.errors)  # each transfer cut by the cap
