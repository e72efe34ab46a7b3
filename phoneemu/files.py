"""User-named files: read with a size cap, written only where writing can succeed.

``inspect FILE``, ``fuzz --replay FILE``, key logs, ``phone.json`` and the PEM files given on the
command line (``boot --mic-key``, ``lab itlrecovery import``) are read through :func:`read_at_most`,
which never reads more than ``limit + 1`` bytes: a file larger than the limit (or a device that
never ends) is refused with its name and size before anything is parsed. Report files
(``--json``, ``--junit``, ``--plot``, ``--keylog``) are checked with :func:`check_writable`
before the work that fills them starts.
"""

from __future__ import annotations

import os
from pathlib import Path

from phoneemu.errors import PhoneEmuError, SizeLimitError

__all__ = ["PEM_LIMIT", "check_writable", "read_at_most"]

PEM_LIMIT = 1 << 20
"""Certificates and keys given on the command line: 1 MiB is far more than any PEM chain needs."""


def read_at_most(path: Path | str, limit: int, *, what: str = "file") -> bytes:
    """The bytes of ``path``; SizeLimitError (naming the file and both sizes) if it holds more
    than ``limit`` bytes. OSError (missing, unreadable, a directory) passes through unchanged."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
        if len(data) <= limit:
            return data
        try:
            size = f.seek(0, 2)  # a device or pipe has no size: it "holds more" than the limit
        except OSError:
            size = 0
    held = f"is {size} bytes," if size > limit else "holds"
    raise SizeLimitError(f"{what} {held} more than the limit of {limit} bytes", file=str(path))


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
