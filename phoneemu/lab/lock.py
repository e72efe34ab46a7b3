"""The lab lock: ``flock`` on ``DIR/.lab.lock`` (our convention; the spec has no lab, §H.6 is the cluster).

Rules:

* A ``phoneemu lab <operation>`` holds it exclusively from loading ``cluster.json`` to its last write
  (:func:`hold_lab_lock`), so two operations on one lab run one after the other. It waits as long as the
  holder holds it (a ``lab serve`` recording its ports or a CAPF outcome during a storm: it never fails
  because the server is busy) and, finding it held, says so first (``on_wait``: the ``lab`` commands
  print it on stderr, naming the ``lab serve`` of ``DIR/.serve.lock`` if one runs).
* An operation that writes two labs — ``lab exchange DIR OTHER`` imports into both — holds both locks
  (:func:`hold_lab_locks`), taken one at a time in a fixed order, by each folder's device and inode,
  whatever the order and the paths typed: ``exchange A B`` and ``exchange B A`` at once — or ``exchange B2
  A``, B2 a bind mount of B — both wait for the same first lock, so neither holds one the other waits for
  (no deadlock; was by resolved path, which a bind mount changes: the two took them in opposite orders);
  each lock found held is said as one operation's is (``on_wait``, naming that lab's lock file). One folder
  named twice, by any two paths (a symlink, a bind mount), is locked once (``flock`` on a second
  descriptor of the same file would wait for the first for ever). Was: only DIR's lock, OTHER written
  unlocked, so an operation on OTHER or its ``lab serve`` recording ports or a CAPF outcome could lose a
  write.
* A command that reads the lab without serving it — ``lab show``, ``boot --lab``, ``fleet boot --lab`` —
  holds it *shared* while it reads (``hold_lab_lock(root, shared=True)``): it waits for an operation under
  way as an operation does, saying so first (``on_wait``, the same text), so it never reads a half-changed
  lab (an operation's new certificates beside the old ITL); readers do not wait for each other. It holds
  it only while it reads (``lab show`` prints after; a boot releases it before the phones boot), so an
  operation waits for no output and no boot.
* ``lab serve`` re-reads a lab another process changed under a *shared* lock taken without waiting
  (:func:`try_lab_lock`): while an operation holds the lock it may be half-written, so the reload is
  skipped (:class:`LabBusyError`) and tried again later — never blocking the serving event loop.
* ``lab serve``'s own writes (the ports it listens on, the ``--host`` it re-issues the configs for)
  hold the lock *exclusively*, as an operation does, on the state as saved (re-read first if another
  process changed it: :meth:`phoneemu.lab.cluster.LabCluster.update_locked`); taken without waiting
  (``try_lab_lock(root, exclusive=True)``) and tried again every poll, so the event loop is never
  blocked and neither the operation's write nor serve's is lost (:func:`when_lab_lock_free`: tried every
  :data:`LOCK_POLL_S`, logged once after :data:`LOCK_WAIT_S`). A write the serving side cannot hold back
  for ever — a CAPF enrolment, whose phone waits for END_SESSION — gives a ``limit``: past it,
  :class:`LabBusyError` and nothing is written (the caller says so to its client).
* A lab whose lock file cannot be created (a read-only folder) is used unlocked, as before; a folder that
  is not a lab (no ``cluster.json``) gets no lock file.
* One ``lab serve`` per lab folder (:func:`serving`): it holds ``DIR/.serve.lock`` exclusively while it
  runs and writes there its pid and where it listens. A second one is refused before it changes anything,
  naming the first: it would have recorded its own ports, so the first — which follows every change —
  would have served files naming a TVS and CAPF port nobody listened on. Held shared only (``boot``'s
  hint looking whether one runs, for a moment), it is tried again for up to :data:`SERVE_LOCK_WAIT_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from phoneemu.errors import PhoneEmuError

__all__ = ["LOCK_FILE", "LOCK_POLL_S", "LOCK_WAIT_S", "SERVE_LOCK_FILE", "LabBusyError", "LabServedError",
           "hold_lab_lock", "hold_lab_locks", "serving", "try_lab_lock", "when_lab_lock_free"]

LOCK_FILE = ".lab.lock"
SERVE_LOCK_FILE = ".serve.lock"
#: ``lab serve``: how long a periodic reload waits for a ``phoneemu lab`` operation holding the lab lock
#: (at most, and at most the watch interval), after how long a write waiting for it is logged, and how
#: often both try meanwhile (our convention)
LOCK_WAIT_S = 1.0
LOCK_POLL_S = 0.05
#: ``lab serve``: how long, and how often, it tries again for ``DIR/.serve.lock`` while only readers hold it
#: (:func:`_take_serve_lock`; our convention)
SERVE_LOCK_WAIT_S = 1.0
SERVE_LOCK_POLL_S = 0.005

_log = logging.getLogger("phoneemu.lab.lock")
_T = TypeVar("_T")


class LabBusyError(PhoneEmuError):
    """Another process holds the lab lock (a ``phoneemu lab`` operation is writing the lab)."""


class LabServedError(PhoneEmuError):
    """Another ``lab serve`` serves this lab folder."""


def _open(root: Path, name: str = LOCK_FILE) -> int:
    """The lock file's descriptor, -1 when ``root`` is not a lab or the file cannot be created."""
    if not (root / "cluster.json").is_file():
        return -1
    try:
        return os.open(root / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return -1


@contextlib.contextmanager
def serving(root: Path | str) -> Iterator[Callable[[str], None]]:
    """Hold ``DIR/.serve.lock`` while serving the lab (module rules); yields ``note(text)``, which
    records where this server listens for a second one's error. :class:`LabServedError` (naming what
    the holder noted) when another process serves it."""
    root = Path(root)
    fd = _open(root, SERVE_LOCK_FILE)
    if fd >= 0:
        try:
            _take_serve_lock(fd)
        except BlockingIOError:
            held = os.pread(fd, 1024, 0).decode("utf-8", "replace").strip() or "starting"
            os.close(fd)
            why = (f"already served by another 'phoneemu lab serve' ({held}): one lab serve per lab folder "
                   "(the lab's files name the ports it listens on); stop that one first, or serve a copy of "
                   "the folder")
            raise LabServedError(why, path=str(root)) from None

    def note(text: str) -> None:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.pwrite(fd, text.encode(), 0)

    try:
        note(f"pid {os.getpid()}, starting")
        yield note
    finally:
        if fd >= 0:
            note("")
            os.close(fd)


def _take_serve_lock(fd: int) -> None:
    """Take ``DIR/.serve.lock`` (``fd``) exclusively, or raise BlockingIOError when another ``lab serve``
    holds it. A shared holder is no server: ``boot --lab``'s "a lab serve runs" hint
    (:func:`phoneemu.commands._cluster_address.lab_served_now`) takes it shared for a moment to see whether
    one holds it exclusively; tried again meanwhile, every :data:`SERVE_LOCK_POLL_S`, for at most
    :data:`SERVE_LOCK_WAIT_S`. Was: refused at once, naming the stale note of a ``lab serve`` killed
    (``already served by another 'phoneemu lab serve' (pid 999999 ...)``) while nothing served the lab."""
    deadline = time.monotonic() + SERVE_LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if not _shared_only(fd) or time.monotonic() >= deadline:
                raise
        time.sleep(SERVE_LOCK_POLL_S)


def _shared_only(fd: int) -> bool:
    """Whether the lock of ``fd``'s file is held shared only (by readers: no exclusive holder), as seen by
    taking it shared for a moment."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return True


@contextlib.contextmanager
def hold_lab_lock(root: Path | str, *, on_wait: Callable[[str], None] | None = None,
                  shared: bool = False) -> Iterator[None]:
    """Hold the lab lock exclusively (waits for the holder, however long; a lab operation), or ``shared``
    (a command reading the lab: waits for an operation, not for other readers). When the lock is held,
    ``on_wait(text)`` is told once, before waiting, who may hold it (a ``lab serve`` recording its ports
    or a CAPF outcome, or another operation): an operation run during a storm never fails because the lab
    is busy, and does not wait in silence either."""
    fd = _open(Path(root))
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        if fd >= 0:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait(_holder_text(Path(root), reading=shared))
                fcntl.flock(fd, mode)
        yield
    finally:
        if fd >= 0:
            os.close(fd)


@contextlib.contextmanager
def hold_lab_locks(roots: Iterable[Path | str], *, on_wait: Callable[[str], None] | None = None) \
        -> Iterator[None]:
    """Hold the lab lock of every folder of ``roots`` exclusively (an operation writing several labs),
    each as :func:`hold_lab_lock` does; taken in the order of the folders (device and inode, whatever
    paths name them), a folder named twice, by any paths, once (module rules: two operations on the same
    labs never wait for each other in a circle)."""
    with contextlib.ExitStack() as held:
        for root in _lock_order(roots):
            held.enter_context(hold_lab_lock(root, on_wait=on_wait))
        yield


def _lock_order(roots: Iterable[Path | str]) -> list[Path]:
    """The folders whose locks :func:`hold_lab_locks` takes, in the order it takes them: each folder once,
    whatever paths name it, ordered by what it is (:func:`_folder_key`), not by a path: a bind mount names
    one folder under another resolved path (was: sorted by resolved path, so ``exchange A B`` and
    ``exchange B2 A``, B2 a bind mount of B sorting before A, took the two locks in opposite orders and
    could wait for each other for ever). Paths resolved as far as they go (``os.path.realpath``): a
    symlink loop is a folder that cannot be read, said by the operation (was: ``Path.resolve``'s
    RuntimeError, a traceback from every ``lab`` operation naming one)."""
    by_folder: dict[tuple[int, int, int, str], Path] = {}
    for resolved, typed in sorted((Path(os.path.realpath(root)), Path(root)) for root in roots):
        by_folder.setdefault(_folder_key(resolved), typed)  # the path typed: the wait message names it
    return [by_folder[key] for key in sorted(by_folder)]


def _folder_key(root: Path) -> tuple[int, int, int, str]:
    """What identifies a lab folder for :func:`_lock_order`: its device and inode, the same under every
    path (a symlink, a bind mount); for one that cannot be read (no lock is taken there, :func:`_open`),
    its resolved path, after every folder that can."""
    try:
        st = os.stat(root)
    except OSError:
        return 1, 0, 0, str(root)
    return 0, st.st_dev, st.st_ino, ""


def _holder_text(root: Path, *, reading: bool = False) -> str:
    """What waits for the lab lock says: the lock file and, when a ``lab serve`` serves the lab, its pid
    and ports (from ``DIR/.serve.lock``; another operation may hold the lock instead); ``reading``: a
    command reading the lab waits (it reads the lab whole once the lock is released)."""
    served = ""
    with contextlib.suppress(OSError), open(root / SERVE_LOCK_FILE, "rb") as f:
        served = f.read(1024).decode("utf-8", "replace").strip()
    who = f"lab serve ({served}) or another phoneemu lab command" if served else \
        "another phoneemu lab command (or lab serve)"
    then = ("the lab is read once it is released (never half-changed)" if reading else
            "this operation runs once it is released")
    return f"waiting for the lab lock {root / LOCK_FILE}: held by {who} writing the lab; {then}"


@contextlib.contextmanager
def try_lab_lock(root: Path | str, *, exclusive: bool = False) -> Iterator[None]:
    """Hold the lab lock shared (to read the lab) or ``exclusive`` (to write it), without waiting:
    :class:`LabBusyError` when another process (or another descriptor of this one) holds it."""
    fd = _open(Path(root))
    try:
        if fd >= 0:
            try:
                fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LabBusyError(f"{LOCK_FILE} is held by another phoneemu lab command",
                                   path=str(root)) from None
        yield
    finally:
        if fd >= 0:
            os.close(fd)


async def when_lab_lock_free(attempt: Callable[[], _T], *, root: Path | str, limit: float | None = None,
                             what: str = "record this server's change") -> _T:
    """Run ``attempt`` (which takes the lab lock without waiting, e.g. ``LabCluster.update_locked(change,
    wait=False)``) until it does not raise :class:`LabBusyError`; between tries sleep :data:`LOCK_POLL_S`
    (the event loop keeps running), logging once after :data:`LOCK_WAIT_S` that it waits for the lock to
    ``what``. ``limit`` None waits as long as the holder holds it; else after ``limit`` seconds the last
    :class:`LabBusyError` is raised (every try failed: nothing was read or written)."""
    start = time.monotonic()
    logged = False
    while True:
        try:
            return attempt()
        except LabBusyError as exc:
            waited = time.monotonic() - start
            if limit is not None and waited >= limit:
                raise LabBusyError(f"{exc.message} for more than {limit:g}s", path=str(root)) from None
            if not logged and waited >= LOCK_WAIT_S:
                logged = True
                _log.warning("lab: %s held by a phoneemu lab command for %.2fs: waiting for it to %s",
                             Path(root) / LOCK_FILE, LOCK_WAIT_S, what)
        await asyncio.sleep(LOCK_POLL_S if limit is None else
                            max(0.0, min(LOCK_POLL_S, limit - (time.monotonic() - start))))
