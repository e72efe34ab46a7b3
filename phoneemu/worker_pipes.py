"""One pipe per worker process: how fleet shards and ``run -j`` workers talk to their parent.

Rules:

* Each worker has its own ``multiprocessing.Pipe(duplex=False)`` to the parent (and, where the parent
  hands out work, one from it). Nothing is shared between workers, so a worker that dies (SIGKILL, the
  OOM killer) in the middle of a message can only damage its own pipe: there is no lock for it to take
  with it (a ``multiprocessing.Queue`` shared by several writers has one, and a writer killed holding
  it blocks every other writer for good) and no stream to corrupt but its own.
* A message is a frame: an 8-byte big-endian length, then the pickled object (:func:`send`, written in
  full or not at all as far as this process is concerned; the reader sees a cut-off frame only when the
  writer died).
* The parent reads every pipe without blocking (:class:`Inbox`): it takes the bytes that are there,
  at most ``_READ_BUDGET`` per pipe per call, and keeps partial frames until they are whole. A worker
  writing a message larger than a pipe holds (several MB) is therefore never stuck while the parent
  waits for something else, and a worker that stops mid-message holds up no one.
* A pipe ends when it reaches end of file (the worker exited or was killed; a cut-off frame left is
  dropped, and said so) or when its bytes do not decode (a length above ``max_message``, a payload
  that does not unpickle): the reader then yields :class:`Closed` with the reason, after every message
  that came before it, and never reads that pipe again. The other pipes are served as before.
* The parent gives each worker its end at start and closes its own copy right after
  (:func:`close_after_start`), so the worker holds the only copy: its exit is the pipe's end of file,
  and a worker reading from a parent that vanished sees end of file too (:func:`recv` raises EOFError).
* A worker whose parent is killed from outside (SIGKILL, the OOM killer) exits at once, whatever it is
  doing, not at its own time limit (:func:`exit_with_parent`, called first thing in the worker): on
  Linux the kernel sends it SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``); everywhere a
  watcher thread checks every ``poll`` seconds that its parent is still the process that started it
  (``os.getppid()``: an orphan is adopted by another) and ends the process (``os._exit(1)``) if not.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import pickle
import signal
import struct
import sys
import threading
import time
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

__all__ = ["MAX_MESSAGE", "Closed", "Inbox", "close_after_start", "ended_workers", "exit_with_parent", "recv",
           "send"]

_HEADER = struct.Struct("!Q")
#: Largest message a reader accepts (a larger length is a damaged pipe, not a reason to buffer 2**64 bytes).
MAX_MESSAGE = 1 << 30
#: Bytes read from one pipe per :meth:`Inbox.wait`, so that one chatty worker cannot starve the others.
_READ_BUDGET = 8 << 20
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Closed:
    """The end of a worker's pipe. ``damaged``: its bytes did not decode (``why``: a length too large,
    or the unpickling error), and the worker may well still be running; else ``why`` is ``end of
    file`` or ``end of file mid-message (...)``: the worker's end is closed, it exited or was killed."""

    why: str
    damaged: bool = False


def send(conn: Connection, obj: Any) -> None:
    """Write ``obj`` to ``conn`` as one frame; blocks until it is all written (the reader keeps
    reading). BrokenPipeError (an OSError) when the reading side is gone."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    fd = conn.fileno()
    while view:
        view = view[os.write(fd, view):]


def recv(conn: Connection) -> Any:
    """Read one frame from ``conn`` (blocking: a worker waiting for its next task). EOFError at the
    end of the pipe, also in the middle of a frame (the writer is gone)."""
    fd = conn.fileno()
    (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size))
    if size > MAX_MESSAGE:
        raise EOFError(f"message of {size} bytes (more than {MAX_MESSAGE})")
    return pickle.loads(_read_exactly(fd, size))  # noqa: S301 - our own parent, as multiprocessing does


def _read_exactly(fd: int, n: int) -> bytes:
    parts: list[bytes] = []
    left = n
    while left:
        chunk = os.read(fd, min(left, _CHUNK))
        if not chunk:
            raise EOFError(f"end of file after {n - left} of {n} bytes")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


_PR_SET_PDEATHSIG = 1
#: How long the watcher of :func:`exit_with_parent` watches at most (a bound, far beyond any run).
_WATCH_LIMIT_S = 30 * 24 * 3600.0


def exit_with_parent(parent: int | None = None, *, poll: float = 0.5) -> int:
    """In a worker process: end this process as soon as process ``parent`` is no longer its parent.
    ``parent`` None: the pid of the process that started this one as multiprocessing recorded it
    (so that a parent already gone before this call is noticed too), else ``os.getppid()``. See the
    module rules; returns the parent's pid at once, the watching is done by the kernel and a daemon
    thread."""
    if parent is None:
        started_by = multiprocessing.parent_process()
        parent = started_by.pid if started_by is not None and started_by.pid else os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError, TypeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # died before the signal was asked for: nobody would send it
        os._exit(1)

    def watch() -> None:
        for _ in range(max(1, round(_WATCH_LIMIT_S / poll))):
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(poll)

    threading.Thread(target=watch, name="phoneemu-parent-watch", daemon=True).start()
    return parent


def close_after_start(conns: Iterable[Connection]) -> None:
    """Close the parent's copies of the ends it gave to workers that have started."""
    for c in conns:
        c.close()


def ended_workers(procs: Sequence[Any], inbox: Inbox, *, skip: Container[int], ended_at: dict[int, float],
                  now: float, grace: float) -> list[int]:
    """The workers (indexes of ``procs``, those in ``skip`` left out) whose end is settled: process and
    pipe both ended (every message sent has been read), or one of them more than ``grace`` seconds ago
    (the other — the exit status, the last bytes in the pipe — had its moment). ``ended_at`` keeps when
    each end was first seen."""
    out: list[int] = []
    for w, p in enumerate(procs):
        if w in skip:
            continue
        code, closed = p.exitcode, w in inbox.closed
        if code is None and not closed:
            continue
        ended_at.setdefault(w, now)
        if (code is not None and closed) or now - ended_at[w] > grace:
            out.append(w)
    return out


class Inbox:
    """The parent's reading ends of its workers' pipes, ``{worker: connection}``; see the module rules."""

    def __init__(self, conns: Mapping[int, Connection], *, max_message: int = MAX_MESSAGE) -> None:
        self._conns = dict(conns)
        self._bufs = {w: bytearray() for w in self._conns}
        self.max_message = max_message
        self.closed: dict[int, Closed] = {}  # worker -> how its pipe ended
        for c in self._conns.values():
            os.set_blocking(c.fileno(), False)

    def add(self, w: int, conn: Connection) -> None:
        """Read worker ``w``'s pipe too (a worker started later, e.g. in place of one that was killed)."""
        if w in self._conns or w in self.closed:
            raise ValueError(f"worker {w} already has a pipe")
        os.set_blocking(conn.fileno(), False)
        self._conns[w] = conn
        self._bufs[w] = bytearray()

    def open(self) -> list[int]:
        """Workers whose pipe has not ended."""
        return list(self._conns)

    def wait(self, timeout: float, sentinels: Iterable[int] = ()) -> list[tuple[int, Any]]:
        """``(worker, message)`` pairs that arrived, in order per worker, a :class:`Closed` last for a
        pipe that ended; waits at most ``timeout`` seconds for the first byte (or for one of
        ``sentinels``, e.g. process sentinels, to be ready: then possibly nothing is returned)."""
        by_obj: dict[Any, int] = {c: w for w, c in self._conns.items()}
        ready = wait([*by_obj, *sentinels], max(0.0, timeout))
        out: list[tuple[int, Any]] = []
        for obj in ready:
            w = by_obj.get(obj)
            if w is not None:
                self._read(w, out)
        return out

    def close(self) -> None:
        """Close every pipe still open."""
        for c in self._conns.values():
            c.close()
        self._conns.clear()

    def _read(self, w: int, out: list[tuple[int, Any]]) -> None:
        fd = self._conns[w].fileno()
        buf = self._bufs[w]
        got = 0
        eof = False
        while got < _READ_BUDGET:
            try:
                chunk = os.read(fd, _CHUNK)
            except BlockingIOError:
                break
            except OSError as exc:  # e.g. ECONNRESET: the pipe is as good as ended
                self._end(w, Closed(f"read failed: {exc}"), out)
                return
            if not chunk:
                eof = True
                break
            buf += chunk
            got += len(chunk)
        at = 0
        while len(buf) - at >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buf, at)
            if size > self.max_message:
                self._end(w, Closed(f"length {size} exceeds {self.max_message}",
                                    damaged=True), out)
                return
            if len(buf) - at - _HEADER.size < size:
                break
            start = at + _HEADER.size
            try:
                msg = pickle.loads(buf[start:start + size])  # noqa: S301 - our own worker process
            except Exception as exc:  # anything a garbled payload makes pickle raise
                self._end(w, Closed(f"{type(exc).__name__}: {exc}", damaged=True), out)
                return
            out.append((w, msg))
            at = start + size
        del buf[:at]
        if eof:
            if buf:
                need = _HEADER.size + (_HEADER.unpack_from(buf)[0] if len(buf) >= _HEADER.size else 0)
                self._end(w, Closed(f"end of file mid-message ({len(buf)} of {need} bytes)"), out)
            else:
                self._end(w, Closed("end of file"), out)

    def _end(self, w: int, closed: Closed, out: list[tuple[int, Any]]) -> None:
        self.closed[w] = closed
        out.append((w, closed))
        self._conns.pop(w).close()
        self._bufs.pop(w)
