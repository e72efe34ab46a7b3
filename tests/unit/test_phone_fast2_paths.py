"""What a storm's phone side no longer pays per boot, round 2 (issue #6), and that the cheaper paths answer
exactly as before:

* the fleet's clock is read without a Python call, and reads ``int(time.time()) + offset``;
* a shard's free boot turn is taken without ``asyncio.Semaphore``'s coroutines (the turns' order and
  cancellations: test_fifo_slots.py);
* a signature check the verify cache knows runs one call besides ``verify`` (the cache key), and the key is
  the same bytes as before, for every kind of message and whatever the digest memo holds;
* a hash code is mapped without building an enum call, with the same members and the same errors;
* asking a socket for ICMP errors and closing it run none of the socket module's Python (its enum family,
  ``contextlib.suppress``), with the same socket options set;
* a caller sending on a UDP endpoint's socket itself and handing a failure to ``send_failed`` does what
  ``sendto`` does (drops counted, ICMP errors reported, a datagram sent again or not), error for error;
* a pooled TFTP fetch is the pool's own coroutine (no frame of the fetcher resumed at each wait), with the
  fetcher's options and the pool's default block size when the fetcher names none.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import socket
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from types import FrameType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.crypto import keys, signatures
from phoneemu.crypto.hashes import HashAlg, hash_alg
from phoneemu.errors import VerificationError, VerifyReason
from phoneemu.fleet import engine
from phoneemu.net import _udp
from phoneemu.net import fetch as fetch_mod
from phoneemu.net._udp import UdpSocket, client_udp_socket, report_icmp_errors
from phoneemu.net.fetch import TftpFetcher
from phoneemu.net.tftp_client import TftpClientPool
from phoneemu.net.tftp_server import TftpRequestEvent, TftpServer
from tests.helpers import calls_of
from tests.integration.test_tftp_udp_errors import _wait_for_queued_error


# --------------------------------------------------------------------------- the fleet's clock
@pytest.mark.parametrize("offset", [0, 86_400, -3_600])
def test_the_fleet_clock_reads_the_time_plus_its_offset_without_a_python_call(offset: int) -> None:
    clock = engine.fleet_clock(offset)
    before = int(time.time()) + offset
    reads = [clock() for _ in range(3)]
    after = int(time.time()) + offset
    assert all(type(r) is int and before <= r <= after for r in reads)
    assert calls_of(clock) == []  # was: the engine's clock closure, 27 reads a boot


# --------------------------------------------------------------------------- a shard's boot turns
def test_a_free_turn_is_taken_and_given_without_asyncio_locks(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[str] = []

    def prof(frame: FrameType, event: str, _arg: object) -> None:
        if event == "call" and frame.f_code.co_filename == asyncio.locks.__file__:
            seen.append(frame.f_code.co_name)

    async def main() -> int:
        turns = engine._Turns(2)
        sys.setprofile(prof)
        try:
            await turns.take()
            await turns.take()
            turns.give()
        finally:
            sys.setprofile(None)
        return turns.free

    assert loop.run_until_complete(main()) == 1
    assert seen == []  # was: Semaphore.acquire, locked, release, _wake_up_next


def test_a_pausing_phone_lets_the_next_one_start_and_takes_a_turn_back(
        loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> list[str]:
        turns = engine._Turns(1)
        order: list[str] = []
        await turns.take()  # the pausing phone's turn
        pause = asyncio.ensure_future(turns.pause(30.0))
        await asyncio.sleep(0)
        await asyncio.wait_for(turns.take(), 5)  # given on by the pause
        order.append(f"next started, pausing={turns.pausing}")
        turns.stop()  # pauses end at once ...
        turns.give()  # ... and the pausing phone takes the turn back
        await asyncio.wait_for(pause, 5)
        return [*order, f"free={turns.free}", f"pausing={turns.pausing}"]

    assert loop.run_until_complete(main()) == ["next started, pausing=1", "free=0", "pausing=0"]


# --------------------------------------------------------------------------- the verify cache
_KEY = keys.generate_key(keys.KeySpec(kind="ec")).public_key()


def _expected_key(key: Any, signature: Any, data: Any, alg: HashAlg) -> bytes:
    """The cache key as the module docstring states it, computed afresh."""
    spki = hashlib.sha256(keys.public_key_spki_der(key)).digest()
    return (bytes([int(alg)]) + spki + hashlib.sha256(bytes(data)).digest()
            + hashlib.sha256(bytes(signature)).digest())


_messages = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(bytearray),
    st.binary(max_size=300).map(memoryview),
    st.sampled_from([b"", b"x" * (signatures._DIGEST_MEMO_MAX + 1)]),
)


@settings(max_examples=200, deadline=None)
@given(_messages, _messages, st.sampled_from(list(HashAlg)), st.booleans())
def test_the_cache_key_is_the_stated_digests_whatever_the_memos_hold(
        data: Any, signature: Any, alg: HashAlg, twice: bool) -> None:
    if twice:  # the second time the memos know these objects
        signatures.VerifyCache.key(_KEY, signature, data, alg)  # type: ignore[arg-type]
    assert signatures.VerifyCache.key(_KEY, signature, data, alg) == _expected_key(  # type: ignore[arg-type]
        _KEY, signature, data, alg)


def test_a_buffer_changed_in_place_is_not_a_remembered_message() -> None:
    data = bytearray(b"a signed config " * 8)
    first = signatures.VerifyCache.key(_KEY, b"sig", data, HashAlg.SHA256)  # type: ignore[arg-type]
    data[0] ^= 1
    assert signatures.VerifyCache.key(_KEY, b"sig", data, HashAlg.SHA256) != first  # type: ignore[arg-type]


def test_a_check_the_cache_knows_runs_one_call_besides_verify() -> None:
    signer = keys.generate_key(keys.KeySpec(kind="ec"))
    data = b"a signed trust list " * 40
    sig = signatures.sign(signer, data, HashAlg.SHA256)
    cache = signatures.VerifyCache()
    old = signatures.set_verify_cache(cache)
    try:
        pub: Any = signer.public_key()
        signatures.verify(pub, sig, data, HashAlg.SHA256)  # checked, remembered
        calls = calls_of(signatures.verify, pub, sig, data, HashAlg.SHA256)
        with pytest.raises(VerificationError):  # a failure is still checked (never remembered)
            signatures.verify(pub, sig, data + b"!", HashAlg.SHA256)
    finally:
        signatures.set_verify_cache(old)
    assert calls == ["signatures.py:key"]  # was: key, three memo calls, two _digest, seen
    assert (cache.hits, cache.misses, len(cache)) == (1, 2, 1)


# --------------------------------------------------------------------------- hash codes
class _Unhashable:
    __hash__ = None  # type: ignore[assignment]


def _old_hash_alg(code: Any) -> object:
    """What ``HashAlg(code)`` gives, or the error hash_alg said for it (reason and text)."""
    try:
        return HashAlg(code)
    except ValueError:
        return ("error", VerifyReason.UNSUPPORTED_HASH,
                f"unsupported hash algorithm code {code} (known: 1 SHA-1, 2 SHA-256, 3 SHA-512)")


def _new_hash_alg(code: Any) -> object:
    try:
        return hash_alg(code)
    except VerificationError as exc:
        return ("error", exc.reason, str(exc))


@pytest.mark.parametrize("code", [*range(-2, 260), True, False, 2.0, 2.5, Decimal(3), "1", None, b"\x01",
                                  [1], HashAlg.SHA512, 1 << 70])
def test_a_hash_code_maps_as_the_enum_does(code: Any) -> None:
    assert _new_hash_alg(code) == _old_hash_alg(code)


def test_an_unhashable_code_is_an_unsupported_hash() -> None:
    code = _Unhashable()
    assert _new_hash_alg(code) == _old_hash_alg(code)


def test_a_hash_code_is_mapped_without_an_enum_call() -> None:
    assert calls_of(hash_alg, 2) == []  # was: EnumType.__call__, Enum.__new__


# --------------------------------------------------------------------------- UDP sockets
def _recverr(sock: socket.socket, level: int, opt: int) -> int:
    return sock.getsockopt(level, opt)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="IP_RECVERR is Linux's")
@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_icmp_errors_are_asked_without_the_sockets_python(family: int) -> None:
    try:
        sock = client_udp_socket(family)
    except OSError as exc:  # no IPv6 here
        pytest.skip(f"no socket of family {family}: {exc}")
    with sock:
        calls = calls_of(report_icmp_errors, sock)
        assert calls == []  # was: socket.family twice (the property, its enum: four calls each)
        assert _recverr(sock, *_udp._RECVERR[socket.AF_INET if family == socket.AF_INET else family]) == 1
        if family == socket.AF_INET6:  # its IPv4 peers' errors too (dual-stack), and dual-stack it is
            assert _recverr(sock, *_udp._RECVERR[socket.AF_INET]) == 1
            assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0


def test_closing_a_udp_socket_runs_nothing_of_contextlib(loop: asyncio.AbstractEventLoop) -> None:
    sock = client_udp_socket(socket.AF_INET)
    udp = UdpSocket(loop, sock, lambda _d, _a: None, max_batch=1)
    calls = calls_of(udp.close)
    assert not [c for c in calls if c.startswith("contextlib.py:")]  # was: suppress's three
    assert udp.closed and sock.fileno() == -1


def test_a_loop_refusing_to_stop_reading_still_closes_and_mutes(loop: asyncio.AbstractEventLoop) -> None:
    socks = [client_udp_socket(socket.AF_INET) for _ in range(2)]
    udps = [UdpSocket(loop, s, lambda _d, _a: None, max_batch=1) for s in socks]
    for s in socks:
        loop.remove_reader(s.fileno())

    def refuse(_fd: int) -> bool:
        raise RuntimeError("loop closing")

    loop.remove_reader = refuse  # type: ignore[method-assign]
    udps[0].close()
    held = udps[1].mute()
    with contextlib.closing(held):
        assert udps[0].closed and socks[0].fileno() == -1
        assert udps[1].closed and held is socks[1] and held.fileno() != -1


# --------------------------------------------------------------------------- sending on the socket itself
class _ScriptedSocket(socket.socket):
    """A UDP socket that records where each ``sendto`` was asked to send and where datagrams went out, and
    fails the sends scripted."""

    sent_to: list[Any]
    went_to: list[Any]
    failures: list[OSError | None]

    def sendto(self, data: Any, *args: Any) -> int:
        self.sent_to.append(args[-1])
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            raise failure
        n = super().sendto(data, *args)
        self.went_to.append(args[-1])
        return n


def _raw_send(udp: UdpSocket, data: bytes, addr: tuple[Any, ...]) -> None:
    """``udp.sendto`` as a caller sending on the socket itself does it (``send_failed``'s docstring)."""
    if not udp.closed:
        try:
            udp.sock.sendto(data, addr)
        except OSError as exc:
            udp.send_failed(exc, data, addr)


def _sends(send: Callable[[UdpSocket, bytes, tuple[Any, ...]], None], failures: list[OSError | None], *,
           icmp: bool, to_closed_port_first: bool) -> list[object]:
    """Where one endpoint's sockets sent, what it dropped and which errors it told, ``send`` sending."""
    errors: list[OSError] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as live, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        live.bind(("127.0.0.1", 0))
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()
        probe.close()  # nothing listens there now: ICMP port unreachable
        lp = asyncio.new_event_loop()
        sock = _ScriptedSocket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.sent_to, sock.went_to, sock.failures = [], [], list(failures)
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
        udp = UdpSocket(lp, sock, lambda _d, _a: None, errors.append, max_batch=1)
        peers = [closed, live.getsockname(), closed, live.getsockname()]
        try:
            udp.icmp_errors = report_icmp_errors(sock) if icmp else False
            for n, peer in enumerate([closed, *peers] if to_closed_port_first else peers):
                went = len(sock.went_to)
                send(udp, b"%d" % n, peer)
                if icmp and closed in sock.went_to[went:]:  # its error queued before the next send, always
                    _wait_for_queued_error(sock)
        finally:
            udp.close()
            lp.close()
        where = {closed: "closed", live.getsockname(): "live"}
        return [[where.get(a[:2], a) for a in sock.sent_to], udp.send_drops,
                [(type(e).__name__, e.errno, where.get(getattr(e, "peer", ())[:2], "-")) for e in errors]]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ICMP errors of UDP sockets: IP_RECVERR")
@pytest.mark.parametrize("failures", [
    [],
    [BlockingIOError(errno.EAGAIN, "full")],
    [None, InterruptedError(errno.EINTR, "interrupted")],
    [None, PermissionError(errno.EPERM, "not permitted")],
    [ConnectionRefusedError(errno.ECONNREFUSED, "refused"), BlockingIOError(errno.EAGAIN, "full")],
])
@pytest.mark.parametrize("icmp", [True, False])
@pytest.mark.parametrize("to_closed_port_first", [True, False])
def test_sending_on_the_socket_itself_does_what_sendto_does(
        failures: list[OSError | None], icmp: bool, to_closed_port_first: bool) -> None:
    via_sendto = _sends(UdpSocket.sendto, failures, icmp=icmp, to_closed_port_first=to_closed_port_first)
    assert _sends(_raw_send, failures, icmp=icmp, to_closed_port_first=to_closed_port_first) == via_sendto
    if icmp and not failures:  # (what the rules are about happened: datagrams sent again, one dropped)
        assert via_sendto[0][-2:] == ["live", "live"] and via_sendto[1] == to_closed_port_first
        assert ("PeerError", errno.ECONNREFUSED, "closed") in via_sendto[2]


# --------------------------------------------------------------------------- a pooled TFTP fetch
@pytest.mark.parametrize(("pool_blksize", "fetcher_blksize", "used"), [(None, None, 512), (1024, None, 1024),
                                                                       (1024, 768, 768)])
def test_a_pooled_fetch_is_the_pools_coroutine_with_the_fetchers_options(
        loop: asyncio.AbstractEventLoop, pool_blksize: int | None, fetcher_blksize: int | None,
        used: int) -> None:
    body = bytes(range(256)) * 9  # several blocks at any of these sizes: the fetch waits more than once
    resumed: list[str] = []
    served: list[TftpRequestEvent] = []

    def prof(frame: FrameType, event: str, _arg: object) -> None:
        if event == "call" and frame.f_code.co_filename == fetch_mod.__file__:
            resumed.append(frame.f_code.co_name)

    async def main() -> bytes:
        async with TftpServer({"f.bin": body}, host="127.0.0.1", port=0, on_request=served.append) as srv:
            pool = TftpClientPool(blksize=pool_blksize, timeout=5.0, retries=2, quarantine_s=0)
            fetcher = TftpFetcher("127.0.0.1", srv.port, blksize=fetcher_blksize, timeout=5.0, retries=2,
                                  pool=pool)
            try:
                sys.setprofile(prof)
                try:
                    return await fetcher.fetch("f.bin")
                finally:
                    sys.setprofile(None)
            finally:
                await pool.close()

    assert loop.run_until_complete(asyncio.wait_for(main(), 20)) == body
    assert [(e.outcome, e.blksize) for e in served] == [("ok", used)]
    assert resumed == ["fetch"]  # was: the fetcher's coroutine, started and resumed at each wait
