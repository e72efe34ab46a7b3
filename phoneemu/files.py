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
interrupt or a full disk), except a FIFO, a device or ``/dev/stdout``, written in place; a symbolic link
is kept and the file it names replaced (:func:`output_target`).
A file written in steps (a pcap capture, :class:`phoneemu.net.capture.PcapWriter`) uses
:class:`AtomicFile`, the same temporary-file-and-rename, put in place when it is closed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import select
import stat
import sys
import threading
import time
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from phoneemu.errors import PhoneEmuError, SizeLimitError

__all__ = [
    "DEAD_TEMP_AGE",
    "PEM_LIMIT",
    "AtomicFile",
    "atomic_write",
    "check_writable",
    "overwritten_input",
    "phone_config_in",
    "private_file",
    "read_at_most",
    "remove_dead_temps",
    "remove_earlier",
    "remove_unwritten",
    "streamed_output",
    "sync_folder",
    "write_output",
    "write_output_pieces",
    "write_output_text",
]

PEM_LIMIT = 1 << 20
"""Certificates and keys given on the command line: 1 MiB is far more than any PEM chain needs."""

TEXT_CHUNK = 1 << 20
"""Characters of a report written in pieces (:func:`write_output_text`) held before they are written."""

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


#: the name of :class:`AtomicFile`'s own temporary file: ``.<name>.tmp<pid>-<thread>``
_OWN_TEMP = re.compile(r"\..+\.tmp(?P<pid>[0-9]{1,10})-[0-9]+")
#: seconds since its last write before a dead process's temporary file is removed (ours): a pid this
#: process cannot see may be a live writer's in another pid namespace (a container sharing the folder)
DEAD_TEMP_AGE = 600.0


def remove_dead_temps(folder: Path | str) -> int:
    """Remove from ``folder`` the temporary files :class:`AtomicFile` left when its process was killed
    between writing and renaming (``.<name>.tmp<pid>-<thread>`` of a process that is gone): never read,
    but they piled up, each a copy of a state that may hold secrets (ours). A live process's (this one's
    included, or one whose pid another has taken) is kept, and so is one written in the last
    :data:`DEAD_TEMP_AGE` seconds (was: removed under a write under way in another container, whose pid
    looks gone from here: its rename failed); nothing else is touched, nor what is not a regular file; a
    folder that cannot be listed or written is left alone. How many were removed."""
    removed = 0
    try:
        listing = os.scandir(folder)
    except OSError:
        return 0
    with listing:
        for entry in listing:
            found = _OWN_TEMP.fullmatch(entry.name)
            if found is None or _process_alive(int(found["pid"])):
                continue
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and time.time() - info.st_mtime > DEAD_TEMP_AGE:
                    os.unlink(entry.path)
                    removed += 1
    return removed


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user's counts: its file is not ours to judge)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True
    return True


class AtomicFile:
    """A file written in steps and put in place whole: ``write()`` goes to a temporary file beside
    ``path`` (created with ``mode`` whatever the umask: 0o600 for private keys, from the first byte),
    ``commit()`` renames it onto ``path`` (``durable``: fsync the file, then its folder), ``abort()``
    removes it. ``tmp_name``: the temporary file's name (default ``.<name>.tmp<pid>-<thread>``). Any
    OSError names ``path`` ("cannot write: ..."), never the temporary file, which is removed."""

    def __init__(self, path: Path | str, *, mode: int = 0o644, durable: bool = False,
                 make_parents: bool = False, tmp_name: str | None = None) -> None:
        self.path = Path(path)
        self.durable = durable
        if not self.path.name:  # "/", "." or "": a folder; no temporary name can be made beside it
            raise IsADirectoryError(errno.EISDIR, f"cannot write: {os.strerror(errno.EISDIR)}",
                                    str(self.path))
        default = f".{self.path.name}.tmp{os.getpid()}-{threading.get_ident()}"
        self._tmp = self.path.with_name(tmp_name or default)
        self._fd = -1
        with self._naming_path():
            if make_parents:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()  # a leftover of a crash: O_EXCL below must not follow a planted link
            self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            try:
                os.fchmod(self._fd, mode)
            except BaseException:
                self.abort()
                raise

    @contextlib.contextmanager
    def _naming_path(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise OSError(exc.errno, f"cannot write: {exc.strerror or exc}", str(self.path)) from None

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append ``data`` (all of it); on failure the temporary file is removed."""
        with self._naming_path():
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view):]
            except BaseException:
                self.abort()
                raise
        return len(data)

    def flush(self) -> None:
        """Unbuffered: every ``write`` is already in the temporary file."""

    def commit(self) -> None:
        """Put the file in place (rename onto ``path``); a second call does nothing."""
        if self._fd < 0:
            return
        with self._naming_path():
            try:
                if self.durable:
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1
                os.replace(self._tmp, self.path)
            except BaseException:
                self.abort()
                raise
            if self.durable:
                sync_folder(self.path.parent)

    close = commit

    def abort(self) -> None:
        """Drop the temporary file; ``path`` keeps what it had."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(OSError):
            self._tmp.unlink()


def sync_folder(folder: Path | str) -> None:
    """fsync ``folder``: the names created, renamed or removed in it survive a crash."""
    fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path | str, data: bytes, *, mode: int = 0o644, durable: bool = False,
                 make_parents: bool = False, tmp_name: str | None = None) -> None:
    """Replace ``path`` with ``data`` atomically through :class:`AtomicFile` (same options): whole
    or not at all; on any failure the temporary file is removed and the OSError names ``path``."""
    f = AtomicFile(path, mode=mode, durable=durable, make_parents=make_parents, tmp_name=tmp_name)
    f.write(data)
    f.commit()


_LINK_HOPS = 40  # as the kernel's own limit on symbolic links followed in one lookup (ELOOP)
#: the folders of "magic" links naming an open file: /dev/stdout -> /proc/self/fd/1
_OPEN_FILE_FOLDERS = ("/proc/", "/dev/fd/")


def output_target(path: Path | str) -> tuple[Path, bool]:
    """Where a user-named output goes and whether it is written in place: a FIFO or a device, or a link
    in ``/proc`` or ``/dev/fd`` (``/dev/stdout`` when stdout is redirected to a file: the file the
    shell opened is written, never a new one renamed over the link in ``/dev``), in place; else the file
    at the end of the path's symbolic links (a link is kept, its target replaced whole). Links are
    followed as the kernel follows them for a shell's ``>``: another user's link in a folder writable by
    all (``/tmp``) is not (:func:`_may_follow`), nor a loop; either is an OSError naming ``path``."""
    path = Path(path)
    hop = path
    for _ in range(_LINK_HOPS):
        if not hop.is_symlink():
            return hop, hop.exists() and not hop.is_file()
        if _names_open_file(hop):
            return hop, True
        if not _may_follow(hop):
            raise PermissionError(errno.EACCES, f"cannot write: {hop} is a symbolic link of another user's "
                                  "in a folder writable by all: not followed (as the kernel's "
                                  "protected_symlinks)", str(path))
        target = os.readlink(hop)
        hop = Path(target) if os.path.isabs(target) else hop.parent / target
    raise OSError(errno.ELOOP, f"cannot write: {os.strerror(errno.ELOOP)}", str(path))


def _names_open_file(link: Path) -> bool:
    """Whether ``link`` is a "magic" link naming an open file: its folder is in ``/proc`` or ``/dev/fd``
    however the path reaches it (``fd/1`` in ``/dev``, ``/tmp/../proc/self/fd/1``; was: the text
    ``/proc/`` at its start, so such a link's target, a file the shell opened, was replaced)."""
    return (os.path.realpath(link.parent) + "/").startswith(_OPEN_FILE_FOLDERS)


def _may_follow(link: Path) -> bool:
    """Whether the kernel follows ``link`` (``fs.protected_symlinks``): a link in a sticky folder writable
    by all (``/tmp``) only when it is ours or the folder owner's. ``os.readlink`` skips that check: a link
    planted as ``/tmp/r.json -> ~/.bashrc`` had its target replaced by the report."""
    folder = os.stat(link.parent)
    if not (folder.st_mode & stat.S_ISVTX and folder.st_mode & stat.S_IWOTH):
        return True
    return os.lstat(link).st_uid in (os.geteuid(), folder.st_uid)


def own_descriptor(target: Path | str) -> int | None:
    """The descriptor of this process that ``target`` (a link :func:`output_target` writes in place)
    names: ``/proc/self/fd/1`` (``/dev/stdout``) is 1; None for anything else."""
    target = Path(target)
    if not target.name.isdigit():
        return None
    folder = os.path.realpath(target.parent)
    return int(target.name) if re.fullmatch(rf"/proc/{os.getpid()}(?:/task/\d+)?/fd", folder) else None


def dup_own_descriptor(target: Path | str) -> int | None:
    """A duplicate of the descriptor of ours that ``target`` names (:func:`own_descriptor`), Python's
    stdout and stderr flushed first, else None. Written through it, bytes follow what the process wrote
    there, at its offset: the file opened again through the link has an offset of its own (``--json
    /dev/stdout > out.json``: the summary printed after the report was written over it)."""
    fd = own_descriptor(target)
    if fd is None:
        return None
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    return os.dup(fd)


def _open_in_place(target: Path) -> BinaryIO:
    """``target`` (:func:`output_target`: in place) opened to write: a descriptor of ours duplicated
    (:func:`dup_own_descriptor`), else the FIFO or device appended to (O_TRUNC would cut a file's bytes)."""
    fd = dup_own_descriptor(target)
    if fd is None:
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    return os.fdopen(fd, "wb")


def write_output(path: Path | str, data: bytes) -> None:
    """A user-named output file is whole or absent: a regular file (or a new one) is replaced with
    :func:`atomic_write`; a FIFO, a device or ``/dev/stdout`` is written in place (:func:`output_target`)."""
    target, in_place = output_target(path)
    if in_place:
        with _open_in_place(target) as f:
            f.write(data)
    else:
        atomic_write(target, data)


@contextlib.contextmanager
def streamed_output(path: Path | str) -> Iterator[Callable[[bytes], object]]:
    """:func:`write_output` of a file made in pieces (a report streamed a record at a time: memory one
    piece): ``with streamed_output(path) as write: write(piece)``. A FIFO or device is written in place
    as the pieces come; else they go to a temporary file beside ``path``, put in place whole when the
    block ends (:class:`AtomicFile`), removed if it raises (``path`` untouched)."""
    target, in_place = output_target(path)
    if in_place:  # as write_output
        with _open_in_place(target) as f:
            yield f.write
        return
    atomic = AtomicFile(target)
    try:
        yield atomic.write
    except BaseException:
        atomic.abort()
        raise
    atomic.commit()


def write_output_pieces(path: Path | str, pieces: Iterable[bytes]) -> None:
    """:func:`streamed_output` of ``pieces``."""
    with streamed_output(path) as write:
        for piece in pieces:
            write(piece)


def write_output_text(path: Path | str, pieces: Iterable[str]) -> None:
    """:func:`streamed_output` of text ``pieces`` (``json_doc.dumps_pieces``: a report a record at a time),
    UTF-8, joined into chunks of about :data:`TEXT_CHUNK` characters: memory a chunk, a write each."""
    with streamed_output(path) as write:
        pending: list[str] = []
        held = 0
        for piece in pieces:
            pending.append(piece)
            held += len(piece)
            if held >= TEXT_CHUNK:
                write("".join(pending).encode("utf-8"))
                pending, held = [], 0
        if pending:
            write("".join(pending).encode("utf-8"))


def private_file(path: Path | str, *, empty: bool = False) -> None:
    """A file of secrets (a TLS key log: every session's keys) is 0600 whatever the umask: created so,
    emptied when ``empty``, an existing regular file narrowed to 0600 (its lines kept: appended to). A
    FIFO or device (``/dev/stdout``) is left as it is. An OSError names ``path``."""
    path = Path(path)
    if path.exists() and not path.is_file():
        return
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | (os.O_TRUNC if empty else 0)
    fd = os.open(path, flags, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def check_writable(path: Path | None, option: str) -> None:
    """Refuse, before any work is done, an output file that could not be written at the end:
    a folder, a missing or read-only parent folder. A 40,000-phone storm or a whole scenario run
    must not end with its report lost to a typo. PhoneEmuError names the option and the path.

    A new or regular file is written through a temporary file beside it (:func:`write_output`): one
    is made there and removed at once (:func:`_can_make_file_in`), as ``os.access`` says yes to root
    where no file can be made (``/proc``, ``/sys``). The file itself is never opened; a FIFO or a
    device (written in place) is asked with ``os.access`` only, a descriptor of ours (``/dev/stdout``)
    whether it is open for writing. Links are followed as :func:`output_target` follows them."""
    if path is None:
        return
    try:  # first: a link the kernel would not follow is not followed by the checks below either
        target, in_place = output_target(path)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).removeprefix("cannot write: ")
        raise PhoneEmuError(f"{option} {path}: not writable ({reason})", path=option.lstrip("-")) from None
    if path.is_dir():
        raise PhoneEmuError(f"{option} {path}: is a folder, not a file", path=option.lstrip("-"))
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise PhoneEmuError(f"{option} {path}: folder {parent} does not exist", path=option.lstrip("-"))
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise PhoneEmuError(f"{option} {path}: not writable", path=option.lstrip("-"))
    if in_place:
        fd = own_descriptor(target)
        if fd is not None and not _open_for_writing(fd):  # --json /dev/stdin: the input, read-only
            raise PhoneEmuError(f"{option} {path}: not writable (descriptor {fd} is not open for writing)",
                                path=option.lstrip("-"))
        return
    folder = target.parent if str(target.parent) else Path(".")
    why = _can_make_file_in(folder, target.name)
    if why is not None:
        raise PhoneEmuError(f"{option} {path}: not writable (no file can be made in {folder}: {why})",
                            path=option.lstrip("-"))


def _open_for_writing(fd: int) -> bool:
    """Whether this process's descriptor ``fd`` is open and may be written."""
    import fcntl

    try:
        return (fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE) in (os.O_WRONLY, os.O_RDWR)
    except OSError:
        return False


def _can_make_file_in(folder: Path, name: str) -> str | None:
    """None when a file can be made in ``folder`` (the temporary file :class:`AtomicFile` would make for
    ``name``, as long a name, is made and removed), else why not (the system's words)."""
    probe = folder / f".{name}.tmp{os.getpid()}-{threading.get_ident()}"
    try:
        with contextlib.suppress(FileNotFoundError):
            probe.unlink()  # a leftover of a crash: O_EXCL below must not fail on it
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    with contextlib.suppress(OSError):
        probe.unlink()
    return None


def same_file_key(path: Path) -> object:
    """What two paths of one file share: (device, inode) of an existing file, else the resolved path."""
    try:
        st = path.stat()
    except OSError:
        return path.resolve()
    return (st.st_dev, st.st_ino)


def check_apart(outputs: Sequence[tuple[str, Path | None]]) -> None:
    """Refuse two output options naming one file (``--json r --junit r``: one report would overwrite the
    other, unseen). PhoneEmuError names both options."""
    seen: dict[object, str] = {}
    for option, path in outputs:
        if path is None:
            continue
        key = same_file_key(path)
        if key in seen:
            raise PhoneEmuError(f"{option} {path}: the same file as {seen[key]}", path=option.lstrip("-"))
        seen[key] = f"{option} {path}"


def _key_of(path: Path) -> object:
    """:func:`same_file_key`, or None for a path that has none (a link loop, a NUL in the name)."""
    try:
        return same_file_key(path)
    except (OSError, RuntimeError, ValueError):
        return None


def overwritten_input(out: Path, files: Iterable[tuple[str, Path | None]],
                      folders: Iterable[tuple[str, Path | None, int]] = ()) -> str | None:
    """What input of the run the output ``out`` would overwrite, else None: an existing regular file (a
    new one, a FIFO or a device replaces none; a link is taken as it is written, :func:`output_target`)
    that is one of ``files`` (option, path: ``--models site.csv``) or lies in one of ``folders`` (what,
    folder, depth): depth 1 a file in it, 2 a file in a folder of it (a phone's flash in a fleet's
    ``DIR/<MAC>``), 0 a file anywhere under it (a lab's). Said as ``--models site.csv`` or ``a file of
    --installed-config-dir old``, for the command's refusal (``predict``, ``fleet boot``, ``replay
    --all``: checked before any work, so that a typo never replaces an input by a report)."""
    try:
        if not out.is_file():
            return None
        real = Path(os.path.realpath(output_target(out)[0]))
    except OSError:  # check_writable says why it cannot be written
        return None
    key = _key_of(real)
    clash = next((f"{what} {path}" for what, path in files if path is not None and _key_of(path) == key),
                 None)
    if clash is not None:
        return clash
    above = [_key_of(folder) for folder in real.parents]  # its folder first
    for what, folder, depth in folders:
        if folder is None:
            continue
        held = _key_of(folder)
        within = above if depth == 0 else above[depth - 1:depth]
        if held is not None and held in within:
            return f"a file of {what} {folder}"
    return None


def remove_earlier(path: Path | str) -> bool:
    """Remove the file an output at ``path`` would have replaced (a link's target, as it is written): an
    earlier run's report must not stand for this run's, which wrote none there. A FIFO or a device is left
    (it holds no earlier report); True when a file was removed."""
    try:
        target, in_place = output_target(path)
        if in_place or not target.is_file():
            return False
        target.unlink()
    except OSError:
        return False
    return True


def remove_unwritten(outputs: Iterable[tuple[str, Path | None]], written: Container[str]) -> list[str]:
    """A run ended (bad input, an interrupt, a write that failed) without writing some of its ``outputs``
    (option, path; ``written``: the options it did write): the earlier file at each such path is removed
    (:func:`remove_earlier`), so that a CI job archiving it does not read the last run's report as this
    one's; a line each to say, ``--junit r.xml: the earlier file there removed (...)``."""
    return [f"{option} {path}: the earlier file there removed (this run wrote no report there)"
            for option, path in outputs
            if path is not None and option not in written and remove_earlier(path)]


def phone_config_in(folder: Path, mac: str) -> Path | None:
    """A phone's config in a TFTP folder (a cluster's, or a copy): ``SEP<MAC>.cnf.xml.sgn``, else
    ``SEP<MAC>.cnf.xml``; None when neither is a file there (``--installed-config-dir``)."""
    from phoneemu.formats.config import config_file_name

    for kind in ("sgn", "plain"):
        path = folder / config_file_name(mac, kind)
        if path.is_file():
            return path
    return None
