"""Deliberately broken fuzz targets for the ``phoneemu fuzz`` tests (``--target tests.fuzz_helpers:NAME``)."""

from __future__ import annotations

from phoneemu.errors import DecodeError


def crashy(data: bytes) -> None:
    """Crashes (IndexError) on inputs whose byte 3 is odd, rejects the rest cleanly."""
    if len(data) > 3 and data[3] & 1:
        raise IndexError("deliberate crash for the fuzz tests")
    raise DecodeError("rejected", fmt="helper", offset=0)


def clean(data: bytes) -> None:
    """Never crashes."""
    if not data:
        raise DecodeError("empty", fmt="helper", offset=0)
