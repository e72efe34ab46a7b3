"""Deliberately broken fuzz targets for the ``phoneemu fuzz`` tests (``--target tests.fuzz_helpers:NAME``);
and how a test runs a finding's info.json command (:func:`run_line`, :func:`split_line`)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from phoneemu.errors import DecodeError

ROOT = Path(__file__).resolve().parents[1]


def crashy(data: bytes) -> None:
    """Crashes (IndexError) on inputs whose byte 3 is odd, rejects the rest cleanly."""
    if len(data) > 3 and data[3] & 1:
        raise IndexError("deliberate crash for the fuzz tests")
    raise DecodeError("rejected", fmt="helper", offset=0)


def clean(data: bytes) -> None:
    """Never crashes."""
    if not data:
        raise DecodeError("empty", fmt="helper", offset=0)


def split_line(line: str) -> tuple[Path | None, list[str]]:
    """An info.json command line: the folder of its leading ``cd DIR &&`` (None without one) and its
    ``phoneemu fuzz ...`` words."""
    words = shlex.split(line)
    if words[:1] == ["cd"]:
        assert words[2] == "&&", line
        return Path(words[1]), words[3:]
    return None, words


def run_line(line: str, *, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run an info.json command line as printed, by a POSIX shell, from ``cwd``: ``phoneemu`` is this
    interpreter's (a shell function running ``python -m phoneemu`` of this checkout)."""
    script = f'phoneemu() {{ {shlex.quote(sys.executable)} -m phoneemu "$@"; }}\n{line}\n'
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(["/bin/sh", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
