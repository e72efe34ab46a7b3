"""Review R3 of the phone's per-boot fast paths (049e3a5) and the lab's repeatable loss (7a9edb3): the
edge cases a hostile reviewer tries, each checked against the product for real.

* a TFTP transfer's one timer: a ``max_time`` cap equal to the retransmission timeout fails the transfer at
  that moment, no packet sent again first, however long the RRQ's send took (the cap and the deadline count
  from one clock read);
* the pool's socket slots under a storm of cancellations: every slot free at the end, nobody served before
  someone who came earlier and still waits, never more holders than slots; a pool's downloads cancelled at
  random points leave no slot taken and none of its sockets open;
* the rules' memos: an object dropped by its caller keeps its id while its entry lives (no later object is
  taken for it), and 100,000 distinct lists keep each memo within its bound;
* the TFTP server's clock: a fake clock patched on asyncio's loop class before the server's module is
  imported is read as patched, as one patched after.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from phoneemu.errors import TransportError
from phoneemu.fifo_slots import FifoSlots
from phoneemu.net import _udp
from phoneemu.net.tftp_client import TftpClientPool, tftp_get
from phoneemu.net.tftp_server import TftpServer
from phoneemu.phone import rules

HOST = "127.0.0.1"


# --------------------------------------------------------------------------- one timer: cap vs deadline
def test_a_cap_equal_to_the_timeout_fails_before_any_retransmission(loop: asyncio.AbstractEventLoop,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that never answers, ``max_time`` = ``timeout``, the RRQ's send slow (a loaded machine): the
    transfer fails as too slow and the server saw one RRQ, no retransmission (was: the cap counted from
    after the send, behind the retransmission deadline, so the RRQ went out again and was counted)."""
    real_sendto = _udp.UdpSocket.sendto

    def slow_rrq(self: _udp.UdpSocket, data: bytes, addr: Any) -> None:
        real_sendto(self, data, addr)
        if data[:2] == b"\x00\x01":
            time.sleep(0.05)  # the send returns late (a loaded loop): no timing is asserted

    monkeypatch.setattr(_udp.UdpSocket, "sendto", slow_rrq)
    mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mute.bind((HOST, 0))
    mute.setblocking(False)
    resent: list[int] = []
    try:
        with pytest.raises(TransportError) as info:
            loop.run_until_complete(asyncio.wait_for(
                tftp_get(HOST, mute.getsockname()[1], "f.bin", timeout=0.1, retries=3, max_time=0.1,
                         on_retransmit=lambda: resent.append(1)), 10))
        got = []
        for _ in range(10):
            try:
                got.append(mute.recv(600))
            except BlockingIOError:
                break
    finally:
        mute.close()
    assert info.value.kind == "timeout" and "took longer than 0.1 s" in info.value.message
    assert resent == [] and [p[:2] for p in got] == [b"\x00\x01"]


# --------------------------------------------------------------------------- the pool's slots
def _slot_storm(seed: int, *, slots_n: int = 4, users: int = 1000) -> tuple[FifoSlots, list[str]]:
    """``users`` tasks take a slot each (as TftpClientPool.get does) while random ones are cancelled at
    random points (waiting, handed a slot, holding it); the slots and the rule breaks seen."""
    rng = random.Random(seed)
    slots = FifoSlots(slots_n)
    broken: list[str] = []
    owner: dict[asyncio.Future[None], int] = {}  # a waiter's future → its user (arrival order)
    holders = 0

    async def user(i: int) -> None:
        nonlocal holders
        lp = asyncio.get_running_loop()
        if slots.free and not slots.waiting:
            slots.free -= 1
        else:
            await slots.take(_Recording(lp, i, owner))  # type: ignore[arg-type]
        holders += 1
        try:
            earlier = [owner[f] for f in slots.waiting if not f.done() and owner.get(f, i) < i]
            if earlier:
                broken.append(f"user {i} served while {earlier[:3]} still waited")
            if holders > slots_n:
                broken.append(f"{holders} holders of {slots_n} slots")
            for _ in range(rng.randrange(3)):
                await asyncio.sleep(0)
        finally:
            holders -= 1
            slots.give()

    async def main() -> None:
        tasks: list[asyncio.Task[None]] = []
        for i in range(users):
            tasks.append(asyncio.create_task(user(i)))
            if rng.random() < 0.3:
                await asyncio.sleep(0)
            if rng.random() < 0.5:
                rng.choice(tasks).cancel()
        for _ in range(200):
            if rng.random() < 0.5:
                rng.choice(tasks).cancel()
            await asyncio.sleep(0)
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    return slots, broken


class _Recording:
    """The loop as :meth:`FifoSlots.take` uses it (its futures), noting whose each future is."""

    def __init__(self, lp: asyncio.AbstractEventLoop, user: int,
                 owner: dict[asyncio.Future[None], int]) -> None:
        self.lp, self.user, self.owner = lp, user, owner

    def create_future(self) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = self.lp.create_future()
        self.owner[fut] = self.user
        return fut


def test_slots_hold_their_order_and_count_under_a_cancellation_storm() -> None:
    """1,000 takers of 4 slots, a random third cancelled at random points, 20 storms: every slot free and
    nobody waiting at the end, never more holders than slots, nobody served while an earlier taker still
    waited (asyncio.Semaphore's rule, which the pool's slots keep: issue #6)."""
    for seed in range(20):
        slots, broken = _slot_storm(seed)
        assert broken == [], (seed, broken[:3])
        assert (slots.free, len(slots.waiting)) == (4, 0), seed


def _open_socket_inodes() -> set[int]:
    """The inodes of the sockets this process has open now (``socket:[N]`` in ``/proc/self/fd``)."""
    inodes: set[int] = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the listing's own descriptor, closed since
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[len("socket:["):-1]))
    return inodes


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads descriptors in /proc")
def test_downloads_cancelled_at_random_points_leave_no_slot_or_socket(
        loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch) -> None:
    """40 downloads through a pool of 4 sockets from a lossy server, random ones cancelled (waiting for a
    slot, mid-transfer, as they end): then every slot is free, no transfer counted as under way, and once
    the pool is closed none of the sockets it opened is left open (quarantine 0: a socket not reused closes
    at once). Only the pool's own sockets are looked at, by inode, each kept referenced so that one dropped
    unclosed stays open and is seen (was: every descriptor of the process counted, and under load one more
    was open — the server's socket of a transfer whose final ACK its loss dropped, still waiting to resend
    its last DATA to the closed port: the server's, not a leak of the pool)."""
    rng = random.Random(3)
    body = bytes(range(256)) * 12  # six 512-byte blocks and a short one
    files = {f"f{i}.bin": body for i in range(40)}
    opened: list[socket.socket] = []  # every socket the pool opened, kept referenced
    inodes: set[int] = set()
    real_socket = _udp.client_udp_socket  # (the pool's: tftp_client imports it)

    def recorded(family: int) -> socket.socket:
        sock = real_socket(family)
        opened.append(sock)
        inodes.add(os.fstat(sock.fileno()).st_ino)
        return sock

    monkeypatch.setattr("phoneemu.net.tftp_client.client_udp_socket", recorded)

    async def main() -> tuple[int, int, int, list[int]]:
        async with TftpServer(files, HOST, 0, loss=0.2, seed=3, timeout=0.02, retries=30) as srv:
            pool = TftpClientPool(max_sockets=4, timeout=0.05, retries=30, max_time=30, quarantine_s=0)
            tasks = [asyncio.create_task(pool.get(HOST, srv.port, name)) for name in files]
            for _ in range(60):
                await asyncio.sleep(rng.random() * 0.004)
                rng.choice(tasks).cancel()
            got = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(r == body or isinstance(r, asyncio.CancelledError) for r in got), got
            slots = pool._slots
            state = (slots.free, len(slots.waiting), pool._quarantine_of.active)
            await pool.close()
            return (*state, sorted(inodes & _open_socket_inodes()))

    try:
        result = loop.run_until_complete(asyncio.wait_for(main(), 60))
    finally:
        for sock in opened:  # (a socket left open by the pool: closed here, after it was counted)
            sock.close()
    assert len(inodes) >= 4  # the pool's sockets were seen: the count below is of something
    assert result == (4, 0, 0, []), f"{len(result[3])} of the pool's {len(inodes)} sockets left open"


# --------------------------------------------------------------------------- the TFTP server's clock
def test_a_clock_patched_before_the_servers_import_is_read_as_patched() -> None:
    """asyncio's loop class given a fake clock, then the TFTP server's module imported (a command imports it
    in its handler): the server reads the fake clock its timers run by (was: time.monotonic, its deadlines
    on another clock than its timers)."""
    code = ("import asyncio\n"
            "asyncio.BaseEventLoop.time = lambda self: 12345.0\n"
            "from phoneemu.net.tftp_server import loop_clock\n"
            "loop = asyncio.new_event_loop()\n"
            "print(loop_clock(loop)())\n"
            "loop.close()\n")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60,
                         check=False)
    assert (out.returncode, out.stdout.strip()) == (0, "12345.0"), out.stderr[-2000:]


# --------------------------------------------------------------------------- the rules' memos
class _Signer:
    def __init__(self, name: str, serial: bytes, issuer: str = "CN=ca") -> None:
        self.name, self.serial, self.issuer = name, serial, issuer


class _Header:
    def __init__(self, signer: _Signer) -> None:
        self.signer = signer


class _List:
    """A trust list as :func:`rules._find` reads it: its bytes' length and records."""

    def __init__(self, records: list[Any]) -> None:
        self.raw = b"x" * 100
        self._records = records

    def __len__(self) -> int:
        return len(self._records)

    def record(self, i: int) -> Any:
        return self._records[i]


def test_a_memo_never_answers_for_a_dead_object_whose_id_came_round_again() -> None:
    """5,000 headers made, asked about and dropped one after another (CPython gives a freed object's id to
    the next one of its size at once): each gets its own signer text, and the memo holds what its keys name,
    within its bound."""
    for i in range(5000):
        header = _Header(_Signer(f"CN=phone{i}", i.to_bytes(3, "big")))
        assert rules._signer_text(header) == f"CN=phone{i} (serial {i:06X})"  # type: ignore[arg-type]
        del header
    memo = rules._SIGNER_TEXT
    assert len(memo) <= memo.max_items and memo._held.keys() == memo.keys()


class _Record:
    """A trust-list record as :func:`rules._find` reads it (a class made once: one per record cost most of
    the test's time)."""

    def __init__(self, serial: bytes) -> None:
        self.serial, self.issuer, self.role = serial, "CN=ca", 0


def test_a_hundred_thousand_distinct_lists_keep_the_memos_bounded() -> None:
    """100,000 lists, each asked for its signer's records once: each answer is its own list's, and the memo
    of found records (which holds its lists) never holds more than its bound."""
    memo = rules._FOUND
    most = 0
    for i in range(100_000):
        serial = i.to_bytes(3, "big")
        rec = _Record(serial)
        tl = _List([rec])
        found, other = rules._find(tl, _Header(_Signer("CN=s", serial)), frozenset({0}))  # type: ignore[arg-type]
        assert found == (rec,) and not other  # type: ignore[comparison-overlap]
        most = max(most, len(memo), len(memo._held))
    assert most <= memo.max_items and memo._held.keys() == memo.keys()
