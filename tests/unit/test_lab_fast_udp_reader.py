"""The lab's per-datagram path kept its rules when made cheaper (issue #6): the batched UDP reader
(``UdpSocket._ready``, :meth:`UdpSocket._ready_one` inlined) and the TFTP server's clock (``loop_clock``).

Real loopback sockets: a datagram sent on loopback is in the receiver's queue when ``sendto`` returns, so
each test sends first, then drives one wake-up of the reader by hand.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable

import pytest

from phoneemu.net._udp import UdpSocket, bound_udp_socket
from phoneemu.net.tftp_server import loop_clock

HOST = "127.0.0.1"
Handler = Callable[[bytes, tuple[str, int]], None]


def _reader(loop: asyncio.AbstractEventLoop, handler: Handler, *, max_batch: int = 64) -> UdpSocket:
    return UdpSocket(loop, bound_udp_socket(HOST, 0), handler, max_batch=max_batch)


def _send(udp: UdpSocket, *payloads: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        for payload in payloads:
            peer.sendto(payload, udp.sockname)


def test_one_wake_up_reads_at_most_max_batch_datagrams_in_order(loop: asyncio.AbstractEventLoop) -> None:
    got: list[bytes] = []
    udp = _reader(loop, lambda data, _addr: got.append(data), max_batch=2)
    try:
        _send(udp, b"1", b"2", b"3")
        udp._ready()
        assert got == [b"1", b"2"]
        udp._ready()
        assert got == [b"1", b"2", b"3"]
        udp._ready()  # nothing left: returns at once
        assert got == [b"1", b"2", b"3"]
    finally:
        udp.close()


def test_a_handler_that_closes_the_socket_ends_the_batch(loop: asyncio.AbstractEventLoop) -> None:
    got: list[bytes] = []

    def close_after_first(data: bytes, _addr: tuple[str, int]) -> None:
        got.append(data)
        udp.close()

    udp = _reader(loop, close_after_first)
    _send(udp, b"1", b"2", b"3")
    udp._ready()
    assert got == [b"1"]


def test_a_handler_replaced_mid_batch_gets_the_next_datagram(loop: asyncio.AbstractEventLoop) -> None:
    """The handler is read for every datagram (a TFTP client hands its socket from transfer to transfer)."""
    first: list[bytes] = []
    second: list[bytes] = []

    def hand_on(data: bytes, _addr: tuple[str, int]) -> None:
        first.append(data)
        udp.on_datagram = lambda data, _addr: second.append(data)

    udp = _reader(loop, hand_on)
    try:
        _send(udp, b"1", b"2", b"3")
        udp._ready()
        assert (first, second) == ([b"1"], [b"2", b"3"])
    finally:
        udp.close()


def test_a_failing_handler_is_logged_and_the_batch_goes_on(loop: asyncio.AbstractEventLoop,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    got: list[bytes] = []

    def fail_on_first(data: bytes, _addr: tuple[str, int]) -> None:
        got.append(data)
        if data == b"1":
            raise RuntimeError("boom")

    udp = _reader(loop, fail_on_first)
    try:
        _send(udp, b"1", b"2")
        with caplog.at_level(logging.ERROR, logger="phoneemu.net.udp"):
            udp._ready()
        assert got == [b"1", b"2"]
        assert "handler failed for datagram from ('127.0.0.1'" in caplog.text
    finally:
        udp.close()


def test_a_receive_error_goes_to_on_error_and_ends_the_batch(loop: asyncio.AbstractEventLoop) -> None:
    errors: list[OSError] = []
    udp = UdpSocket(loop, bound_udp_socket(HOST, 0), lambda _d, _a: None, errors.append)
    real = udp.sock
    try:
        real.close()  # recvfrom on a closed socket: OSError (EBADF), not "nothing to read"
        udp._ready()
        assert len(errors) == 1 and isinstance(errors[0], OSError)
    finally:
        udp.sock = real
        udp.close()


def test_the_tftp_clock_is_the_loops_own(loop: asyncio.AbstractEventLoop) -> None:
    """asyncio's ``time`` is ``time.monotonic()``: called straight. Any other ``time`` — a loop's own, or
    one patched on the loop — is what its timers run by, so it is the one used."""
    assert loop_clock(loop) is time.monotonic

    class OwnClock(asyncio.SelectorEventLoop):
        def time(self) -> float:
            return 42.0

    own = OwnClock()
    try:
        assert loop_clock(own)() == 42.0
    finally:
        own.close()
    patched = asyncio.new_event_loop()
    try:
        patched.time = lambda: 7.0  # type: ignore[method-assign]
        assert loop_clock(patched)() == 7.0
    finally:
        patched.close()


def test_a_clock_patched_on_asyncios_loop_class_is_read_as_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake clock patched on ``asyncio.BaseEventLoop`` itself (after import) is what every loop's timers
    run by: the TFTP server reads it too, not ``time.monotonic``."""
    monkeypatch.setattr(asyncio.BaseEventLoop, "time", lambda self: 12345.0)
    loop = asyncio.new_event_loop()
    try:
        assert loop_clock(loop)() == 12345.0
    finally:
        loop.close()
