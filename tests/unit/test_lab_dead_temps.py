"""A lab opened removes the temporary files a killed write left (``.<name>.tmp<pid>-<thread>`` of a process
that is gone): they piled up at every killed save, each a copy of the state (phoneemu.files rules)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from phoneemu.files import DEAD_TEMP_AGE, remove_dead_temps
from phoneemu.lab.cluster import LabCluster

NOW = 1_780_000_000


def _dead_pid() -> int:
    """The pid of a process that has ended (and was waited for)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _aged(*paths: Path) -> None:
    """Last written longer ago than ``DEAD_TEMP_AGE``: no write under way any more."""
    old = time.time() - DEAD_TEMP_AGE - 5
    for path in paths:
        os.utime(path, (old, old), follow_symlinks=False)


def test_a_killed_writes_temporary_files_go_when_the_lab_is_opened(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    LabCluster.init(root, seed=3, key_spec="rsa1024", now=NOW)
    dead, alive = _dead_pid(), os.getpid()
    left = [root / f".cluster.json.tmp{dead}-140000", root / "private" / f".capf.key.tmp{dead}-1",
            root / "certs" / f".capf.pem.tmp{dead}-1"]
    kept = [root / f".cluster.json.tmp{alive}-1", root / ".notes.tmp",
            root / "certs" / f"capf.pem.tmp{dead}-1"]
    for path in (*left, *kept):
        path.write_bytes(b"secret")
    _aged(*left, *kept)
    LabCluster.open(root, durable=False)
    assert [p for p in left if p.exists()] == []
    assert [p for p in kept if not p.exists()] == []


def test_only_regular_files_of_that_name_are_removed(tmp_path: Path) -> None:
    dead = _dead_pid()
    (tmp_path / f".x.tmp{dead}-1").mkdir()
    (tmp_path / f".y.tmp{dead}-1").symlink_to(tmp_path / "nowhere")
    (tmp_path / f".z.tmp{dead}-1").write_bytes(b"")
    _aged(*tmp_path.iterdir())
    assert remove_dead_temps(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".x.tmp{dead}-1", f".y.tmp{dead}-1"]
    assert remove_dead_temps(tmp_path / "missing") == 0
