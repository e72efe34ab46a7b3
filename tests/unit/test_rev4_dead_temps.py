"""Review of ``files.remove_dead_temps`` (run by ``LabCluster.open``): a temporary file whose pid this process
cannot see is not always a dead one's — a write under way in another container sharing the lab folder
(another pid namespace: ``kill(pid, 0)`` says no such process) must survive the open and be put in place."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from phoneemu.files import DEAD_TEMP_AGE, AtomicFile, remove_dead_temps
from phoneemu.lab.cluster import LabCluster

NOW = 1_780_000_000


def _unseen_pid() -> int:
    """A pid no process of this namespace has (as another container's writer looks from here)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_write_under_way_in_another_pid_namespace_survives_the_lab_being_opened(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    LabCluster.init(root, seed=3, key_spec="rsa1024", now=NOW)
    target = root / "certs" / "extra.pem"
    writer = AtomicFile(target, tmp_name=f".extra.pem.tmp{_unseen_pid()}-140000")
    writer.write(b"first half ")
    LabCluster.open(root, durable=False)  # e.g. a lab serve starting in this container (no lab lock)
    writer.write(b"second half")
    writer.commit()  # was: FileNotFoundError, its temporary file removed under it
    assert target.read_bytes() == b"first half second half"


def test_a_dead_writers_temporary_file_goes_once_it_is_old(tmp_path: Path) -> None:
    temp = tmp_path / f".state.json.tmp{_unseen_pid()}-1"
    temp.write_bytes(b"secret")
    assert remove_dead_temps(tmp_path) == 0  # written just now: may be a write under way
    old = time.time() - DEAD_TEMP_AGE - 5
    os.utime(temp, (old, old))
    assert remove_dead_temps(tmp_path) == 1
    assert not temp.exists()
