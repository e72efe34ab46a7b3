"""A live capture reports itself started only once the kernel stamps packets as they arrive
(:mod:`phoneemu.scenario.capturing`, module rules): the kernel turns its stamping on in a deferred work
item when the first socket asks for it, and stamps a packet read before that at its reading (a backlog
read after the stop then looked sent after it: the drain ended early, nothing said)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from phoneemu.scenario import capturing
from phoneemu.scenario.capturing import LiveCapture

HOST = "127.0.0.88"  # the capture's lab range: an address no other test uses (xdist workers capture too)
NOT_SEEN = "The kernel was not seen stamping packets as they arrive"


def _live(tmp_path: Path, name: str) -> LiveCapture:
    try:
        return LiveCapture(tmp_path / f"{name}.pcap", tmp_path / f"{name}.keys", hosts=(HOST, HOST))
    except (PermissionError, AttributeError, OSError) as exc:
        pytest.skip(f"live capture not possible here: {exc}")


def _probes(answers: Iterator[bool], name: str) -> tuple[list[bool], Callable[..., bool]]:
    """A stand-in for one probe that answers from ``answers``; the list says, per probe, whether the
    capture's thread (``capture:<name>``) was running then."""
    running: list[bool] = []

    def probe(receiver: socket.socket, sender: socket.socket, wait_s: float) -> bool:
        running.append(any(t.name == f"capture:{name}" for t in threading.enumerate()))
        return next(answers)

    return running, probe


def test_the_start_waits_until_a_probe_is_stamped_on_arrival(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Two probes stamped at their reading, then one on arrival: three probes, all before the capture's
    thread starts, and nothing said. (Before: the start did not wait; no probe.)"""
    running, probe = _probes(iter([False, False, True]), "waits")
    monkeypatch.setattr(capturing, "_stamps_on_arrival", probe, raising=False)
    cap = _live(tmp_path, "waits")
    try:
        assert cap.kernel_timestamps
        assert running == [False, False, False]
        assert cap.arrival_stamps
    finally:
        cap.close()
    note = cap.note_path.read_text() if cap.note_path.exists() else ""
    assert NOT_SEEN not in note


def test_a_kernel_never_seen_stamping_on_arrival_is_waited_for_a_bounded_time_and_said(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No probe is ever stamped on arrival: the start goes on after ``_STAMP_WAIT_S`` (at most 100 probes)
    and the note file says the first packets' times may be their reading's."""
    running, probe = _probes(iter([False] * 1000), "never")
    monkeypatch.setattr(capturing, "_stamps_on_arrival", probe, raising=False)
    monkeypatch.setattr(capturing, "_STAMP_WAIT_S", 0.05, raising=False)
    cap = _live(tmp_path, "never")
    try:
        assert 1 <= len(running) <= 100 and not any(running)
        assert cap.kernel_timestamps and not cap.arrival_stamps
    finally:
        cap.close()
    assert NOT_SEEN in cap.note_path.read_text()


class _StampedWhenRead(socket.socket):
    """A UDP socket whose packets' kernel times are replaced by their reading time (the kernel's stamping
    not yet on)."""

    def recvmsg(self, *args: int) -> tuple[bytes, list[tuple[int, int, bytes]], int, object]:
        data, _ancdata, flags, addr = super().recvmsg(*args)
        now = time.time_ns()
        stamp = capturing._TIMESPEC.pack(now // 10**9, now % 10**9)
        return data, [(socket.SOL_SOCKET, capturing._SO_TIMESTAMPNS, stamp)], flags, addr


def test_a_probe_stamped_at_its_reading_is_not_taken_for_one_stamped_on_arrival() -> None:
    """The probe's rule on its own: a stamp taken when the datagram is read is no arrival stamp; the
    kernel's, once its stamping is on (a socket asking for it held open, as the capture's), is."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        if not capturing._enable_kernel_timestamps(holder):
            pytest.skip("no SO_TIMESTAMPNS here")
        assert capturing._wait_for_arrival_stamps()
        with _StampedWhenRead(socket.AF_INET, socket.SOCK_DGRAM) as late, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            late.bind(("127.0.0.1", 0))
            assert not capturing._stamps_on_arrival(late, sender, 5.0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            receiver.bind(("127.0.0.1", 0))
            assert capturing._enable_kernel_timestamps(receiver)
            assert capturing._stamps_on_arrival(receiver, sender, 5.0)


def test_after_the_wait_another_sockets_packets_are_stamped_on_arrival() -> None:
    """The kernel's switch is one for every socket: once the probe is stamped on arrival, a datagram to a
    socket that asked for stamps before the wait (as the capture's does) and read 20 ms after it came has
    the time it arrived. (Measured without the wait: 19 of 20 such first datagrams had their reading's.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        held.bind(("127.0.0.1", 0))
        if not capturing._enable_kernel_timestamps(held):
            pytest.skip("no SO_TIMESTAMPNS here")
        assert capturing._wait_for_arrival_stamps()
        sender.sendto(b"after the wait", held.getsockname())
        time.sleep(0.02)
        reading = time.time()
        data, ancdata, _flags, _addr = held.recvmsg(64, capturing._CMSG_SPACE)
        stamp = capturing._kernel_time(ancdata)
    assert data == b"after the wait"
    assert stamp is not None and stamp < reading
