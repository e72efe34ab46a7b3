"""Records of every phone kept on disk, not in memory, until the reports are written.

Rule (ours, issue #6): a command that reports on every phone (``fleet boot --json``/``--junit``,
``replay --all``) spools each phone's record as it is done — a JSON line (ASCII: a lone surrogate is
written ``\\udcXX`` and read back as it went) appended to an unnamed temporary file, mode 0600, with no
name on disk: gone when closed, when the spool is dropped, on Ctrl-C or when the process is killed — and
reads the records back a line at a time to write the reports. Memory: where each line starts, if the
caller keeps it (:meth:`JsonLines.append` returns it), and one record.
"""

from __future__ import annotations

import json
import tempfile
import weakref
from collections.abc import Iterable, Iterator
from typing import IO, Any

__all__ = ["JsonLines"]


class JsonLines:
    """JSON values in an unnamed temporary file (module rule), one line each, made by :meth:`open` or at
    the first value; read back by where a line starts (:meth:`read`) or all in order (iterating). An
    OSError (``TMPDIR`` full or not writable) passes to the caller unchanged."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix  # of its name for the moment it has one (none with Linux O_TMPFILE)
        self._file: IO[bytes] | None = None
        self._end = 0  # where the next line starts
        self._at_end = True  # the file's position is _end (no read since the last append)

    @property
    def is_open(self) -> bool:
        """True from the first value (or :meth:`open`) until :meth:`close`."""
        return self._file is not None

    def open(self) -> IO[bytes]:
        """The file, made now if it is not yet (a caller that would rather fail before its work starts)."""
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix=self._prefix)  # noqa: SIM115 (close())
            weakref.finalize(self, self._file.close)  # a spool dropped unclosed (a test's result)
        return self._file

    def append(self, values: Iterable[Any]) -> list[int]:
        """Append ``values``, a line each; where each line starts. No value: no file is made."""
        lines = [(json.dumps(v, separators=(",", ":")) + "\n").encode("ascii") for v in values]
        if not lines:
            return []
        file = self.open()
        if not self._at_end:
            file.seek(self._end)
            self._at_end = True
        file.write(b"".join(lines))
        starts = []
        for line in lines:
            starts.append(self._end)
            self._end += len(line)
        return starts

    def read(self, at: int) -> Any:
        """The value whose line starts at ``at`` (a start :meth:`append` returned)."""
        file = self._reading()
        file.seek(at)
        return json.loads(file.readline())

    def __iter__(self) -> Iterator[Any]:
        """Every value, in the order appended (none once closed)."""
        if self._file is None:
            return
        file = self._reading()
        file.seek(0)
        for line in file:
            yield json.loads(line)

    def _reading(self) -> IO[bytes]:
        if self._file is None:
            raise ValueError("read of a closed spool")
        self._file.flush()
        self._at_end = False
        return self._file

    def close(self) -> None:
        """Drop the file and every value (a second call does nothing)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._end = 0
        self._at_end = True

    @staticmethod
    def folder() -> str:
        """Where the file is made (named in a caller's message when it cannot be)."""
        return tempfile.gettempdir()
