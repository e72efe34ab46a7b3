"""Temporary folders that name their maker, and the sweep of those whose maker is gone (our convention).

A process killed from outside (SIGKILL, the OOM killer) runs no clean-up: the ``phoneemu-*`` folder it
was using (a scenario's lab and flash, ``run -j``'s workers' files, ``boot``'s flash) stays in the
system's temporary folder. Each folder made by :func:`owned_tempdir` / :func:`make_owned_tempdir` holds
``.phoneemu-owner``: the maker's pid, its start time and its pid namespace, so a pid since reused by
another process does not keep the folder alive. :func:`sweep_abandoned` (run when ``phoneemu run`` and
``phoneemu boot`` start) removes this user's ``phoneemu-*`` folders whose maker is no longer running.
A folder without the file (made by something else), of another user, or made in another pid
namespace (another container sharing the folder: its pids mean nothing here) is never touched.

A Ctrl-C or SIGTERM (:mod:`phoneemu.interrupts`) while a folder is made is held back until the folder
is whole (owner file written) and its maker holds the path: one that came between ``mkdtemp`` and the
maker's ``try`` left the folder (``boot``'s, once it has put a MIC's private key there) until the next
sweep, or for good when the owner file was not yet written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from phoneemu.interrupts import ctrl_c_deferred

__all__ = ["OWNER_FILE", "PREFIX", "make_owned_tempdir", "owned_tempdir", "sweep_abandoned"]

_log = logging.getLogger(__name__)

PREFIX = "phoneemu-"
OWNER_FILE = ".phoneemu-owner"
_MAX_ENTRIES = 10_000  # the temporary folder's entries looked at, at most (a bound on the sweep)
_MAX_OWNER_BYTES = 256


def _start_time(pid: int) -> str | None:
    """Field 22 of ``/proc/PID/stat`` (start time in clock ticks since boot); None: no such process or
    no ``/proc`` (then the pid alone is compared)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()  # the command name, in parentheses, may hold spaces
    return fields[19].decode("ascii", "replace") if len(fields) > 19 else None


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return "-"


def _identity(pid: int) -> str:
    return f"{pid} {_start_time(pid) or '-'} {_pid_namespace()}"


def make_owned_tempdir(prefix: str = PREFIX, parent: str | Path | None = None) -> str:
    """``tempfile.mkdtemp`` holding the owner file (see module docstring); the caller removes it. Made
    whole or not at all: failed or interrupted (a Ctrl-C or SIGTERM, held back while the folder is made,
    then raised) before it is returned, the folder is removed here. To keep the path before a Ctrl-C can
    stop it, a caller calls this inside its ``try`` under :func:`~phoneemu.interrupts.ctrl_c_deferred`
    (as :func:`owned_tempdir` does)."""
    path = ""
    try:
        with ctrl_c_deferred() as interrupted:
            path = tempfile.mkdtemp(prefix=prefix, dir=parent)
            Path(path, OWNER_FILE).write_text(_identity(os.getpid()) + "\n", encoding="ascii")
        interrupted()
    except BaseException:
        if path:
            shutil.rmtree(path, ignore_errors=True)
        raise
    return path


@contextlib.contextmanager
def owned_tempdir(prefix: str = PREFIX) -> Iterator[str]:
    """Like ``tempfile.TemporaryDirectory(prefix=...)``, with the owner file; removed on exit, a Ctrl-C
    while it is made included."""
    path: str | None = None
    try:
        with ctrl_c_deferred() as interrupted:
            path = make_owned_tempdir(prefix)
        interrupted()
        yield path
    finally:
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)


def _maker_gone(owner: str) -> bool:
    """True when the process that wrote ``owner`` (``PID START PIDNS``) no longer runs here."""
    parts = owner.split()
    if len(parts) != 3 or not parts[0].isdigit():
        return False  # not ours to judge
    pid, start, pidns = int(parts[0]), parts[1], parts[2]
    if pidns != _pid_namespace():
        return False
    now = _start_time(pid)
    if now is not None:  # the pid runs: is it still the maker?
        return start not in ("-", now)  # "-": written without /proc, cannot tell
    if Path("/proc/self/stat").exists():  # /proc works and has no such pid
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (another user's process)
        return False
    return False


def sweep_abandoned(root: str | Path | None = None) -> list[Path]:
    """Remove this user's ``phoneemu-*`` folders in ``root`` (default: the temporary folder) whose maker
    is gone; the removed folders, for a log line. Errors leave a folder where it is."""
    base = Path(root if root is not None else tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = os.scandir(base)
    except OSError:
        return removed
    uid = os.getuid() if hasattr(os, "getuid") else None
    with entries:
        for n, entry in enumerate(entries):
            if n >= _MAX_ENTRIES:
                break
            if not entry.name.startswith(PREFIX):
                continue
            try:
                if not entry.is_dir(follow_symlinks=False):
                    continue
                if uid is not None and entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                with open(os.path.join(entry.path, OWNER_FILE), "rb") as f:
                    owner = f.read(_MAX_OWNER_BYTES).decode("ascii", "replace")
            except OSError:
                continue
            if _maker_gone(owner):
                shutil.rmtree(entry.path, ignore_errors=True)
                if not os.path.exists(entry.path):
                    removed.append(Path(entry.path))
                    _log.info("removed %s: left by process %s, which is gone", entry.path, owner.split()[0])
    return removed
