"""worker_pipes: one pipe per worker; a damaged or cut-off pipe ends that pipe only; large messages
flow while the parent serves the others (in-process pipes and threads: no worker processes here)."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import struct
import threading
from multiprocessing.connection import Connection
from typing import Any

import pytest

from phoneemu.worker_pipes import Closed, Inbox, recv, send


def _pipes(n: int) -> tuple[Inbox, list[Connection]]:
    pairs = [mp.Pipe(duplex=False) for _ in range(n)]
    return Inbox({i: r for i, (r, _) in enumerate(pairs)}), [w for _, w in pairs]


def _drain(inbox: Inbox, until: int, rounds: int = 200) -> list[tuple[int, Any]]:
    """Everything the inbox yields until ``until`` pipes have ended (bounded: ``rounds`` waits)."""
    got: list[tuple[int, Any]] = []
    for _ in range(rounds):
        got += inbox.wait(0.1)
        if len(inbox.closed) >= until:
            return got
    raise AssertionError(f"only {len(inbox.closed)} pipe(s) ended: {got!r:.300}")


def _frame(payload: bytes) -> bytes:
    return struct.pack("!Q", len(payload)) + payload


def test_messages_in_order_then_end_of_file() -> None:
    inbox, (w,) = _pipes(1)
    for n in range(3):
        send(w, ("progress", n))
    w.close()
    got = _drain(inbox, 1)
    assert got == [*((0, ("progress", n)) for n in range(3)), (0, Closed("end of file"))]
    assert inbox.open() == []


def test_cut_off_message_ends_that_pipe_only() -> None:
    """A writer that dies mid-message (here: half a frame, then its end closed) loses its own pipe;
    what it sent whole before is kept, and the other pipe's messages all arrive."""
    inbox, (a, b) = _pipes(2)
    send(a, "whole")
    frame = _frame(pickle.dumps("x" * 1000))
    os.write(a.fileno(), frame[:300])
    a.close()
    for n in range(5):
        send(b, n)
    got = _drain(inbox, 1)
    cut = Closed(f"end of file mid-message (300 of {len(frame)} bytes)")
    assert [m for w, m in got if w == 0] == ["whole", cut]
    assert not inbox.closed[0].damaged
    send(b, "after")
    b.close()
    got += _drain(inbox, 2)
    assert [m for w, m in got if w == 1] == [0, 1, 2, 3, 4, "after", Closed("end of file")]


@pytest.mark.parametrize(("garbage", "why"), [
    (_frame(b"\x80\x05garbage"), "UnpicklingError"),
    (struct.pack("!Q", 1 << 40), "length 1099511627776 exceeds"),
])
def test_garbage_is_a_damaged_pipe_and_the_others_go_on(garbage: bytes, why: str) -> None:
    inbox, (a, b) = _pipes(2)
    send(a, "before")
    os.write(a.fileno(), garbage)
    send(a, "never read")  # whole, but after the damage: the stream cannot be trusted any more
    send(b, "other")
    got = _drain(inbox, 1)
    (closed,) = [m for w, m in got if w == 0 and isinstance(m, Closed)]
    assert closed.damaged and why in closed.why, closed
    assert next(m for w, m in got if w == 0) == "before" and "never read" not in [m for _, m in got]
    send(b, "still served")
    b.close()
    got += _drain(inbox, 2)
    assert [m for w, m in got if w == 1] == ["other", "still served", Closed("end of file")]
    a.close()


def test_large_message_while_the_parent_waits_on_all() -> None:
    """A writer blocked on a full pipe (8 MB here, a pipe holds 64 kB) is read little by little while
    the parent keeps serving the other pipe: no deadlock, every byte arrives."""
    inbox, (a, b) = _pipes(2)
    big = os.urandom(8 << 20)
    def write() -> None:
        send(a, ("done", big))
        a.close()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    send(b, "small")
    b.close()
    got = _drain(inbox, 2)
    writer.join(10)
    assert not writer.is_alive()
    assert [m for w, m in got if w == 0] == [("done", big), Closed("end of file")]
    assert [m for w, m in got if w == 1] == ["small", Closed("end of file")]


def test_recv_reads_frames_and_ends_with_eof() -> None:
    r, w = mp.Pipe(duplex=False)
    send(w, (1, "task"))
    send(w, None)
    os.write(w.fileno(), _frame(b"cut")[:5])
    w.close()
    assert recv(r) == (1, "task") and recv(r) is None
    with pytest.raises(EOFError):
        recv(r)
    r.close()


def test_send_to_a_closed_reader_is_an_os_error() -> None:
    r, w = mp.Pipe(duplex=False)
    r.close()
    with pytest.raises(BrokenPipeError):
        send(w, "nobody listens")
    w.close()
