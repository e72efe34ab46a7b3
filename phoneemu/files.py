"""Reading user-named files with a size cap: memory stays bounded whatever the file holds.

``inspect FILE``, ``fuzz --replay FILE`` and the PEM files given on the command line are read
through :func:`read_at_most`, which never reads more than ``limit + 1`` bytes: a file larger
than the limit is refused with its name and size before anything is parsed.
"""

from __future__ import annotations

from pathlib import Path

from phoneemu.errors import SizeLimitError

__all__ = ["PEM_LIMIT", "read_at_most"]

PEM_LIMIT = 1 << 20
"""Certificates and keys given on the command line: 1 MiB is far more than any PEM chain needs."""


def read_at_most(path: Path | str, limit: int, *, what: str = "file") -> bytes:
    """The bytes of ``path``; SizeLimitError (naming the file and both sizes) if it holds more
    than ``limit`` bytes. OSError (missing, unreadable, a directory) passes through unchanged."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
        if len(data) <= limit:
            return data
        f.seek(0, 2)
        size = f.tell()
    raise SizeLimitError(f"{what} is {size} bytes, more than the limit of {limit}", file=str(path))
