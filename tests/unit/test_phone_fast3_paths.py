"""What a storm's phone side no longer pays per boot, round 3 (issue #6), and that the cheaper paths answer
exactly as before:

* the TFTP client acknowledges a DATA block on its socket itself (no call of the UDP endpoint's ``sendto``),
  a failed send handled as ``sendto`` handles it — dropped, told, sent again — and a failure that ends the
  transfer ends it without an exception from the handler;
* a pooled download is one coroutine of the pool around the transfer's (was two), and its socket still goes
  back to the pool, to quarantine or is closed as before;
* a boot reads its clock and stamps a timeline line without a Python call of its own, and a pending decision
  is recorded without ``Decision.pending``'s: the lines and event times are the same, second for second;
* a parsed header's tag offsets are gathered with one comprehension (no generator or lambda per tag), the
  same offsets in the same order.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import inspect
import itertools
import socket
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import TransportError
from phoneemu.formats import header as header_mod
from phoneemu.net import tftp_client
from phoneemu.net._udp import UdpSocket
from phoneemu.net.fetch import MemoryFetcher
from phoneemu.net.tftp_client import TftpClientPool, _Transfer
from phoneemu.net.tftp_server import TftpServer
from phoneemu.phone import boot as boot_mod
from phoneemu.phone.events import Decision, EventLog, QueryKey
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import TrustStore
from tests.helpers import calls_of

HOST = "127.0.0.1"


# --------------------------------------------------------------------------- TFTP: the ACK on the socket
class _ScriptedSocket(socket.socket):
    """A UDP socket whose sends fail as scripted (one entry a send, None: sent); records where each went."""

    failures: list[OSError | None]
    went_to: list[Any]

    def sendto(self, data: Any, *args: Any) -> int:
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            raise failure
        self.went_to.append((bytes(data), args[-1]))
        return super().sendto(data, *args)


def _scripted(failures: list[OSError | None]) -> _ScriptedSocket:
    sock = _ScriptedSocket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.failures, sock.went_to = list(failures), []
    sock.setblocking(False)
    sock.bind((HOST, 0))
    return sock


def _transfer(lp: asyncio.AbstractEventLoop, server: tuple[Any, ...], sock: socket.socket,
              ) -> tuple[_Transfer, UdpSocket, list[str]]:
    """A transfer from ``server`` on a real UDP endpoint of ``sock``; the errors the endpoint tells it."""
    told: list[str] = []
    holder: list[_Transfer] = []

    def on_error(exc: OSError) -> None:
        told.append(type(exc).__name__)
        holder[0].on_error(exc)

    udp = UdpSocket(lp, sock, lambda _d, _a: None, on_error, max_batch=1)
    t = _Transfer(lp, udp, server, "f.bin", blksize=None, timeout=5.0, retries=2, tsize=False,
                  max_size=1 << 20, on_retransmit=None)
    holder.append(t)
    return t, udp, told


def test_a_data_block_is_acknowledged_on_the_socket_itself(loop: asyncio.AbstractEventLoop) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server_sock:
        server_sock.bind((HOST, 0))
        server = server_sock.getsockname()
        plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        plain.setblocking(False)
        plain.bind((HOST, 0))
        t, udp, told = _transfer(loop, server, plain)
        try:
            calls = calls_of(t.on_datagram, b"\x00\x03\x00\x01" + b"a" * 512, server)
            ours = [c for c in calls if c.split(":")[0] in ("_udp.py", "tftp_client.py")]  # (not loop.time)
            assert ours == []  # was: _udp.py:sendto, once a DATA block
            server_sock.settimeout(5)
            assert server_sock.recvfrom(100) == (b"\x00\x04\x00\x01", plain.getsockname())
            assert t.last_pkt == b"\x00\x04\x00\x01" and t.expected == 2 and not t.fut.done() and told == []
        finally:
            udp.close()


_FAILURES = [BlockingIOError(errno.EAGAIN, "full"), InterruptedError(errno.EINTR, "interrupted"),
             PermissionError(errno.EPERM, "not permitted"),
             ConnectionRefusedError(errno.ECONNREFUSED, "refused")]


@pytest.mark.parametrize("failure", _FAILURES, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("final", [False, True], ids=["block", "final-block"])
def test_a_failed_ack_is_handled_as_sendto_handles_it(loop: asyncio.AbstractEventLoop, failure: OSError,
                                                      final: bool) -> None:
    """The transfer's ACK meeting ``failure`` is dropped and told exactly as ``UdpSocket.sendto`` of it (a
    second endpoint, the same failure), and the transfer goes on or ends as that tells it; one ended by it
    (ICMP port unreachable) ends unreachable, its handler raising nothing (was: InvalidStateError, the
    final DATA setting a result on a transfer already failed)."""
    server = (HOST, 9)  # (nothing is sent there: every send of these endpoints fails as scripted)
    block = b"\x00\x03\x00\x01" + b"a" * (7 if final else 512)
    t, udp, told = _transfer(loop, server, _scripted([failure]))
    reference_told: list[str] = []
    reference = UdpSocket(loop, _scripted([failure]), lambda _d, _a: None,
                          lambda exc: reference_told.append(type(exc).__name__), max_batch=1)
    try:
        t.on_datagram(block, server)  # raises nothing
        reference.sendto(b"\x00\x04\x00\x01", server)
        assert (udp.send_drops, told) == (reference.send_drops, reference_told)
        assert t.last_pkt == b"\x00\x04\x00\x01"  # kept for a retransmission, whatever the send did
        if isinstance(failure, ConnectionRefusedError):
            with pytest.raises(TransportError) as info:
                t.fut.result()
            assert info.value.kind == "unreachable"
        elif final:
            assert t.fut.result() == b"a" * 7
        else:
            assert not t.fut.done() and t.expected == 2
    finally:
        if t.timer is not None:
            t.timer.cancel()
        udp.close()
        reference.close()


def test_no_ack_goes_out_of_a_closed_endpoint(loop: asyncio.AbstractEventLoop) -> None:
    t, udp, told = _transfer(loop, (HOST, 9), _scripted([]))
    sock = udp.sock
    udp.close()
    t.on_datagram(b"\x00\x03\x00\x01" + b"a" * 512, (HOST, 9))
    assert sock.went_to == [] and udp.send_drops == 0 and told == []  # type: ignore[attr-defined]
    assert t.expected == 2


# --------------------------------------------------------------------------- TFTP: one coroutine a download
def _coroutines_resumed(into: list[str]) -> Callable[[FrameType, str, object], None]:
    def prof(frame: FrameType, event: str, _arg: object) -> None:
        code = frame.f_code
        ours = code.co_filename == tftp_client.__file__ and code.co_flags & inspect.CO_COROUTINE
        if event == "call" and ours and code.co_name != "_keep":  # (the quarantine's keeper starts meanwhile)
            into.append(code.co_name)
    return prof


def test_a_pooled_download_resumes_one_coroutine_of_the_pool(loop: asyncio.AbstractEventLoop) -> None:
    body = bytes(range(256)) * 3  # two blocks: the socket goes back to the pool (final DATA 2)
    resumed: list[str] = []

    async def main() -> tuple[bytes, int, int, int]:
        async with TftpServer({"f.bin": body}, host=HOST, port=0) as srv:
            pool = TftpClientPool(timeout=5.0, retries=2, quarantine_s=60)
            try:
                sys.setprofile(_coroutines_resumed(resumed))
                try:
                    data = await pool.get(HOST, srv.port, "f.bin")
                finally:
                    sys.setprofile(None)
                idle = len(pool._idle[socket.AF_INET])
                with pytest.raises(TransportError):
                    await pool.get(HOST, srv.port, "missing.bin")
                return data, idle, pool.quarantined, len(pool._all)
            finally:
                await pool.close()

    data, idle, quarantined, open_sockets = loop.run_until_complete(asyncio.wait_for(main(), 20))
    assert data == body
    assert resumed == ["get", "_run", "get", "_run"]  # was: get, _get, _run at the start and at the answer
    # the socket of the download went back to the pool; the failed one's went to quarantine, not reused
    assert (idle, quarantined, open_sockets) == (1, 1, 1)


def test_a_download_of_a_closed_pool_closes_its_socket(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[bool, int, int]:
        async with TftpServer({"f.bin": b"x" * 600}, host=HOST, port=0) as srv:
            pool = TftpClientPool(timeout=5.0, retries=2, quarantine_s=60)
            got = asyncio.ensure_future(pool.get(HOST, srv.port, "f.bin"))
            await asyncio.sleep(0)  # the transfer has started
            ep = next(iter(pool._all))
            pool._closed = True  # (closed while the download is under way, as close() begins)
            await got
            try:
                return ep.transport.closed, len(pool._all), pool.quarantined
            finally:
                await pool.close()

    assert loop.run_until_complete(asyncio.wait_for(main(), 20)) == (True, 0, 0)


# --------------------------------------------------------------------------- the boot's clock and stamps
def _boot(clock: Callable[[], Any]) -> Any:
    profile = get_profile("cp-8861")
    return boot_mod._Boot(mac="0A00000000F3", profile=profile, store=TrustStore(profile=profile),
                          fetcher=MemoryFetcher({}), clock=clock, events=EventLog(), image_signers=(),
                          tvs=_never, capf=_never, auth_string=None, capf_retries=0, capf_retry_delay=0.0,
                          save=None, sleep=asyncio.sleep)


async def _never(*_a: Any, **_k: Any) -> Any:
    raise AssertionError("not asked")


_PENDING = Decision(rule="G.3.4-ask-tvs", accepted=False, reason="signer unknown: asking TVS",
                    file="CTLSEP0A00000000F3.tlv", kind="CTL",
                    needs_tvs=QueryKey(subject="CN=s", issuer="CN=i", serial=b"\x01"))


def test_a_note_and_a_pending_decision_run_no_python_of_the_boot_but_the_event_log() -> None:
    b = _boot(itertools.repeat(1_780_000_000).__next__)  # (a clock of C code: only the boot's Python counted)
    b.note("boot", "first")  # (its second stamped: the stamp cache holds it)
    assert calls_of(b.note, "boot", "again") == ["events.py:note"]  # was: now, _hms too
    assert calls_of(b.record, _PENDING) == ["events.py:log"]  # was: pending, now, _hms too
    assert b.pending == [_PENDING] and b.decisions == []
    assert b.timeline[-1] == ("20:26:40 CTLSEP0A00000000F3.tlv: G.3.4-ask-tvs pending: "
                              "signer unknown: asking TVS")


_READS = st.one_of(st.integers(min_value=0, max_value=4_102_444_800),
                   st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["note", "show", "record"]), _READS), min_size=1, max_size=12))
def test_timeline_stamps_and_event_times_are_the_clocks_reads(steps: list[tuple[str, float]]) -> None:
    """Each line is stamped HH:MM:SS (UTC) of ``int`` of the read it was made at, and each event carries that
    ``int``, whatever the order of the seconds (more of them than the stamp cache keeps included)."""
    reads = iter([v for _, v in steps])
    b = _boot(lambda: next(reads))
    for what, _ in steps:
        if what == "note":
            b.note("tvs", "text", file="f")
        elif what == "show":
            b.show("Shown")
        else:
            b.record(_PENDING)
    stamps = [dt.datetime.fromtimestamp(int(v), dt.UTC).strftime("%H:%M:%S") for _, v in steps]
    assert [line.split(" ", 1)[0] for line in b.timeline] == stamps
    assert [e.time for e in b.events.events] == [int(v) for what, v in steps if what != "show"]
    assert all(type(e.time) is int for e in b.events.events)


def test_a_clock_that_fails_fails_the_read_and_the_next_read_works() -> None:
    reads: list[Any] = [OSError("clock unreadable"), 1_780_000_001.7]

    def clock() -> float:
        got = reads.pop(0)
        if isinstance(got, Exception):
            raise got
        return float(got)

    b = _boot(clock)
    with pytest.raises(OSError, match="clock unreadable"):
        b.note("boot", "x")
    assert b.now() == 1_780_000_001 and b.timeline == []


# --------------------------------------------------------------------------- a header's tag offsets
def _walk_of(containers: dict[int, int], values: dict[int, tuple[bytes, int]]) -> Any:
    w = header_mod._Walk("test")
    w.containers.update(containers)
    w.values.update(values)
    return w


def _reference_offsets(w: Any) -> tuple[tuple[int, int], ...]:
    """The offsets as the previous code gathered them (generators and a lambda key)."""
    found = [(header_mod.T.VERSION, 0), (header_mod.T.HEADER_LENGTH, 5), *w.containers.items(),
             *((tag, at - 3) for tag, (_, at) in w.values.items())]
    return tuple(sorted(((int(t), at) for t, at in found), key=lambda item: item[1]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=6, max_value=5000), unique=True, max_size=30), st.data())
def test_tag_offsets_are_gathered_as_before(offsets: list[int], data: st.DataObject) -> None:
    tags = data.draw(st.lists(st.integers(min_value=3, max_value=255), min_size=len(offsets),
                              max_size=len(offsets), unique=True))
    leaf = data.draw(st.lists(st.booleans(), min_size=len(offsets), max_size=len(offsets)))
    containers = {t: at for t, at, is_leaf in zip(tags, offsets, leaf, strict=True) if not is_leaf}
    values = {t: (b"v", at + 3) for t, at, is_leaf in zip(tags, offsets, leaf, strict=True) if is_leaf}
    w = _walk_of(containers, values)
    got = header_mod._tag_offsets(w)
    assert got == _reference_offsets(w)
    assert all(type(t) is int and type(at) is int for t, at in got)


def test_tag_offsets_call_one_comprehension() -> None:
    w = _walk_of({3: 8, 4: 40}, {5: (b"n", 14), 6: (b"s", 22), 9: (b"h", 46)})
    assert calls_of(header_mod._tag_offsets, w) == ["header.py:<listcomp>"]  # was: 9 genexpr, 5 lambda
    assert header_mod._tag_offsets(w) == ((1, 0), (2, 5), (3, 8), (5, 11), (6, 19), (4, 40), (9, 43))
