"""Fuzz findings are written atomically (:func:`phoneemu.files.atomic_write`): a write that dies midway
leaves the previous finding (or none), never a truncated one, and no temporary file behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from phoneemu import files
from phoneemu.fuzz.engine import Finding, FuzzConfig, _save


def _finding(data: bytes) -> Finding:
    return Finding(signature="ValueError at parse", kind="crash", first_run=3, count=1, detail="boom",
                   ops=("flip",), resigned=False, data=data, minimized=data[:4])


def test_a_finding_is_complete_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    f = _finding(b"A" * 5000)
    _save(f, FuzzConfig(fmt="itl", runs=1, out=tmp_path))
    assert f.directory is not None
    assert (f.directory / "input.bin").read_bytes() == b"A" * 5000
    assert (f.directory / "minimized.bin").read_bytes() == b"AAAA"
    assert json.loads((f.directory / "info.json").read_text())["input_size"] == 5000
    assert sorted(p.name for p in f.directory.iterdir()) == ["info.json", "input.bin", "minimized.bin"]


def test_a_write_killed_midway_leaves_the_previous_finding_whole(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    config = FuzzConfig(fmt="itl", runs=1, out=tmp_path)
    old = _finding(b"A" * 5000)
    _save(old, config)
    assert old.directory is not None
    before = {p.name: p.read_bytes() for p in old.directory.iterdir()}
    real_write = os.write

    def dies_midway(fd: int, data: bytes | memoryview) -> int:  # a kill after part of the bytes
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "write", dies_midway)
    new = _finding(b"B" * 8000)
    with pytest.raises(OSError):
        _save(new, config)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in old.directory.iterdir()} == before  # whole, no temp file
