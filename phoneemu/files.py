"""User-named files: read with a size cap, written only where writing can succeed.

``inspect FILE``, ``fuzz --replay FILE``, key logs, ``phone.json`` and the PEM files given on the
command line (``boot --mic-key``, ``lab itlrecovery import``) are read through :func:`read_at_most`,
which never reads more than ``limit + 1`` bytes: a file larger than the limit (or a device that
never ends) is refused with its name and size before anything is parsed. Report files
(``--json``, ``--junit``, ``--plot``, ``--keylog``) are checked with :func:`check_writable`
before the work that fills them starts.

Files phoneemu writes for itself (lab state, keys, certificates, served files, a phone's flash) go
through :func:`atomic_write`: a temporary file beside the target, renamed onto it. Whatever fails
— a full disk, a target that is a folder — the temporary file is removed (it may hold a private
key) and the OSError names the target, not the temporary file. Output files a user names
(``--json``, ``--junit``, ``--json-file``, ``--plot``, fuzz ``summary.json``) go through
:func:`write_output`: replaced atomically the same way (whole or absent, never truncated by an
interrupt or a full disk), except a FIFO or a device such as ``/dev/stdout``, written in place.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import stat
import threading
import time
from pathlib import Path

from phoneemu.errors import PhoneEmuError, SizeLimitError

__all__ = ["PEM_LIMIT", "atomic_write", "check_writable", "read_at_most", "write_output"]

PEM_LIMIT = 1 << 20
"""Certificates and keys given on the command line: 1 MiB is far more than any PEM chain needs."""

STREAM_TIMEOUT = 10.0
"""Seconds a FIFO, pipe or device named as a file may take to reach its end of file."""


def read_at_most(path: Path | str, limit: int, *, what: str = "file",
                 timeout: float = STREAM_TIMEOUT) -> bytes:
    """The bytes of ``path``; SizeLimitError (naming the file and both sizes) if it holds more
    than ``limit`` bytes. OSError (missing, unreadable, a directory) passes through unchanged.

    A FIFO, pipe or character device is opened without blocking (a FIFO with no writer would
    hang ``open`` for ever) and read until end of file, ``limit + 1`` bytes, or ``timeout``
    seconds without the end arriving, whichever comes first: the last is a PhoneEmuError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        size = 0  # a device or pipe has no size: it "holds more" than the limit
        if stat.S_ISREG(st.st_mode):
            os.set_blocking(fd, True)
            size = st.st_size
        # read in chunks, never one buffer of ``limit`` bytes: a huge --limit must not allocate it
        data = _read_stream(fd, limit, timeout, what=what, path=path)
    finally:
        os.close(fd)
    if len(data) <= limit:
        return data
    held = f"is {size} bytes," if size > limit else "holds"
    raise SizeLimitError(f"{what} {held} more than the limit of {limit} bytes", file=str(path))


def _read_stream(fd: int, limit: int, timeout: float, *, what: str, path: Path | str) -> bytes:
    """Up to ``limit + 1`` bytes of a file, or of a non-blocking pipe or device within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    got = 0
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while got <= limit:
        try:  # read first: a FIFO that never had a writer reads as end of file, but never polls ready
            chunk = os.read(fd, min(1 << 20, limit + 1 - got))
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PhoneEmuError(f"{what}: no end of file after {timeout:g} s (a pipe or device "
                                    f"that never closes?); {got} bytes read", file=str(path)) from None
            poller.poll(max(1, int(left * 1000)))
            continue
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def atomic_write(path: Path | str, data: bytes, *, mode: int = 0o644, durable: bool = False,
                 make_parents: bool = False, tmp_name: str | None = None) -> None:
    """Replace ``path`` with ``data`` atomically: write a temporary file beside it (created with
    ``mode`` whatever the umask: 0o600 for private keys, from the first byte), then rename it onto
    ``path``. ``durable``: fsync the file and then its folder. ``tmp_name``: the temporary file's
    name (default ``.<name>.tmp<pid>-<thread>``). On any failure the temporary file is removed;
    an OSError names ``path`` ("cannot write: ...")."""
    path = Path(path)
    tmp = path.with_name(tmp_name or f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
    try:
        if make_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # a leftover of a crash: O_EXCL below must not follow a planted link
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            try:
                os.fchmod(fd, mode)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        if durable:
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write: {exc.strerror or exc}", str(path)) from None


def write_output(path: Path | str, data: bytes) -> None:
    """A user-named output file is whole or absent: a regular file (or a new one) is replaced with
    :func:`atomic_write`; a FIFO or a device such as ``/dev/stdout`` is written in place."""
    path = Path(path)
    if path.exists() and not path.is_file():
        path.write_bytes(data)
    else:
        atomic_write(path, data)


def check_writable(path: Path | None, option: str) -> None:
    """Refuse, before any work is done, an output file that could not be written at the end:
    a folder, a missing or read-only parent folder. A 40,000-phone storm or a whole scenario run
    must not end with its report lost to a typo. PhoneEmuError names the option and the path."""
    if path is None:
        return
    if path.is_dir():
        raise PhoneEmuError(f"{option} {path}: is a folder, not a file", path=option.lstrip("-"))
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise PhoneEmuError(f"{option} {path}: folder {parent} does not exist", path=option.lstrip("-"))
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise PhoneEmuError(f"{option} {path}: not writable", path=option.lstrip("-"))
